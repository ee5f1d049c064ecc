/*
 * semd/tokenizer.h - the CLIP byte-level BPE tokenizer, exact to the reference.
 *
 * The reference is transformers' CLIPTokenizer with ftfy installed, which is
 * what diffusers' Stable Diffusion pipelines run. openai/CLIP's SimpleTokenizer
 * differs in that it also HTML-unescapes the text twice after ftfy, and cleans
 * the text as a whole where transformers first splits literal
 * "<|startoftext|>" / "<|endoftext|>" out; select it with SEMD_TEXT_OPENAI.
 *
 * Encoding: fix the text (the ftfy repairs prompts hit: HTML entities, terminal
 * escapes, C1 controls, Latin ligatures, full-width forms, curly quotes, line
 * breaks, control characters, NFC; not ftfy's mojibake repair, see
 * core/text_clean.h), collapse whitespace, lowercase, split with the CLIP
 * pattern (letter runs, single digits, runs of other symbols, contractions,
 * the two special tokens), map UTF-8 bytes to the 256 BPE base symbols, apply
 * the merges by rank, look up ids. A tokenizer is read-only once loaded, so
 * threads may encode with it concurrently.
 */
#ifndef SEMD_TOKENIZER_H
#define SEMD_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SEMD_CLIP_BOS 49406
#define SEMD_CLIP_EOS 49407
#define SEMD_CLIP_CONTEXT 77 /* BOS + 75 content tokens + EOS, then padding */

typedef enum semd_text_mode {
    SEMD_TEXT_HF = 0,     /* transformers CLIPTokenizer + ftfy (diffusers) */
    SEMD_TEXT_OPENAI = 1  /* openai/CLIP SimpleTokenizer: also html.unescape twice */
} semd_text_mode;

typedef struct semd_tokenizer semd_tokenizer;

/*
 * Load from openai/CLIP's bpe_simple_vocab_16e6.txt.gz (the vocabulary is
 * derived from the merges). Pad id defaults to 49407 (SD1.x).
 */
int semd_tokenizer_load_bpe(const char *gz_path, semd_tokenizer **out);
/*
 * Load from a diffusers tokenizer/ folder: vocab.json and merges.txt; the pad
 * id comes from special_tokens_map.json ("pad_token") when present.
 */
int semd_tokenizer_load_dir(const char *dir, semd_tokenizer **out);
/* Load the bundled bpe_simple_vocab_16e6.txt.gz (build tree, then install). */
int semd_tokenizer_load_default(semd_tokenizer **out);
void semd_tokenizer_free(semd_tokenizer *tok);

int32_t semd_tokenizer_pad_id(const semd_tokenizer *tok);
void semd_tokenizer_set_pad_id(semd_tokenizer *tok, int32_t pad_id);
size_t semd_tokenizer_vocab_size(const semd_tokenizer *tok);

/*
 * Content ids of `text` (no BOS/EOS, not truncated). Writes at most `cap` ids
 * into `ids` and sets *n_ids to the full count, so a caller may size a buffer
 * with a first call. Invalid UTF-8 is SEMD_EINVAL naming the byte offset.
 */
int semd_tokenizer_encode(const semd_tokenizer *tok, semd_text_mode mode, const char *text,
                          int32_t *ids, size_t cap, size_t *n_ids);

/*
 * What SD pipelines feed the text encoder: BOS, the first 75 content ids, EOS,
 * then the pad id up to SEMD_CLIP_CONTEXT.
 */
int semd_tokenizer_encode_padded(const semd_tokenizer *tok, semd_text_mode mode,
                                 const char *text, int32_t ids[SEMD_CLIP_CONTEXT]);

/*
 * The byte-level text of token `id` as the vocabulary spells it (e.g. "cat</w>",
 * with bytes_to_unicode characters), NUL-terminated and cut to fit `cap`.
 * Returns its full length in bytes, or SEMD_EINVAL for an id not in the vocabulary.
 */
int semd_tokenizer_token_text(const semd_tokenizer *tok, int32_t id, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
