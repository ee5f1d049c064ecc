/* semdrawd tokenize: one line of 77 CLIP token ids per prompt argument. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "semd/checkpoint.h"
#include "semd/status.h"
#include "semd/tokenizer.h"

static const char *const USAGE =
    "semdrawd tokenize [--model PATH | --vocab FILE|DIR] [--openai] TEXT...";

static int load_tokenizer(const char *model, const char *vocab, semd_tokenizer **tok)
{
    if (vocab) {
        if (cli_is_dir(vocab)) return semd_tokenizer_load_dir(vocab, tok);
        return semd_tokenizer_load_bpe(vocab, tok);
    }
    if (!model) return semd_tokenizer_load_default(tok);
    semd_checkpoint *ck;
    int rc = semd_checkpoint_open(model, NULL, &ck);
    if (rc) return rc;
    rc = semd_checkpoint_tokenizer(ck, tok);
    semd_checkpoint_free(ck);
    return rc;
}

static void print_ids(const int32_t *ids)
{
    for (int i = 0; i < SEMD_CLIP_CONTEXT; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *vocab = NULL;
    semd_text_mode mode = SEMD_TEXT_HF;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--model") == 0) {
            if (!(model = cli_value(argc, argv, &i))) return cli_usage(USAGE, "--model needs a path");
        } else if (strcmp(argv[i], "--vocab") == 0) {
            if (!(vocab = cli_value(argc, argv, &i))) return cli_usage(USAGE, "--vocab needs a path");
        } else if (strcmp(argv[i], "--openai") == 0) {
            mode = SEMD_TEXT_OPENAI;
        } else {
            return cli_usage(USAGE, "unknown option %s", argv[i]);
        }
    }
    if (model && vocab) return cli_usage(USAGE, "give --model or --vocab, not both");
    if (i >= argc) return cli_usage(USAGE, "no TEXT to tokenize");
    semd_tokenizer *tok;
    int rc = load_tokenizer(model, vocab, &tok);
    if (rc) return cli_fail("cannot load the tokenizer", rc);
    int status = 0;
    for (; i < argc && !status; i++) {
        int32_t ids[SEMD_CLIP_CONTEXT];
        rc = semd_tokenizer_encode_padded(tok, mode, argv[i], ids);
        if (rc) status = cli_fail("cannot tokenize", rc);
        else print_ids(ids);
    }
    semd_tokenizer_free(tok);
    return status;
}
