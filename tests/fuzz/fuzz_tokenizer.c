/*
 * fuzz_tokenizer: a prompt, as arbitrary bytes, through the CLIP tokenizer in
 * both text modes (ftfy subset, html.unescape, whitespace clean, lowercasing,
 * the CLIP pattern, BPE). Invalid UTF-8 must be refused with SEMD_EINVAL, and
 * a prompt that encodes gives BOS, ids in the vocabulary, EOS, then padding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "semd/tokenizer.h"

static semd_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* Loading the bundled merges takes a while: once per process, shared by every input. */
    if (semd_tokenizer_load_default(&tok)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", semd_last_error());
        abort();
    }
    return 0;
}

/*
 * The padded ids against the unpadded encoding of the same text: BOS, the
 * first 75 content ids, EOS, then the pad id; every id in the vocabulary.
 */
static void check_ids(semd_text_mode mode, const char *text, const int32_t ids[SEMD_CLIP_CONTEXT])
{
    enum { MAX_CONTENT = SEMD_CLIP_CONTEXT - 2 };
    int32_t content[MAX_CONTENT];
    size_t n = 0;
    semd_clear_error();
    int rc = semd_tokenizer_encode(tok, mode, text, content, MAX_CONTENT, &n);
    fuzz_check_status("semd_tokenizer_encode", rc);
    if (rc) abort(); /* the padded encoding of the same text succeeded */
    if (n > MAX_CONTENT) n = MAX_CONTENT;
    const int32_t vocab = (int32_t)semd_tokenizer_vocab_size(tok);
    if (ids[0] != SEMD_CLIP_BOS || ids[n + 1] != SEMD_CLIP_EOS) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i + 1] != content[i] || content[i] < 0 || content[i] >= vocab) abort();
    for (size_t i = n + 2; i < SEMD_CLIP_CONTEXT; i++)
        if (ids[i] != semd_tokenizer_pad_id(tok)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Prompts reach the tokenizer as C strings: the bytes up to the first NUL. */
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    const semd_text_mode modes[] = {SEMD_TEXT_HF, SEMD_TEXT_OPENAI};
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        int32_t ids[SEMD_CLIP_CONTEXT];
        semd_clear_error();
        int rc = semd_tokenizer_encode_padded(tok, modes[k], text, ids);
        fuzz_check_status("semd_tokenizer_encode_padded", rc);
        if (rc == SEMD_OK) check_ids(modes[k], text, ids);
        else if (rc != SEMD_EINVAL) abort(); /* only invalid UTF-8 is refused */
    }
    free(text);
    return 0;
}
