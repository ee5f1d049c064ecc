/*
 * semdrawd - the semdraw daemon and engine host.
 *
 * Subcommands run the engine directly, for scripts, tests and checks:
 *   tokenize   CLIP token ids of prompts
 *   encode     prompts through a checkpoint's tokenizer and text encoder
 *   probe      run one model module on tensors from a safetensors file
 *   bench      time UNet evaluations against the backend's GEMM rate
 *   render     single-prompt LCM text-to-image to a PNG
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define SEMDRAWD_VERSION "0.2.0"

static void usage(FILE *to)
{
    fputs("usage: semdrawd COMMAND [ARGS]\n"
          "\n"
          "commands:\n"
          "  tokenize [--model PATH | --vocab FILE|DIR] [--openai] TEXT...\n"
          "      print 77 CLIP token ids per TEXT (BOS, ids, EOS, padding)\n"
          "  encode --model PATH [--config DIR] [--backend cpu] [--clip-skip K]\n"
          "         [-o OUT.safetensors] PROMPT...\n"
          "      tokenize and encode prompts with the checkpoint's text encoder\n"
          "  probe --model PATH [--config DIR] --module clip --in IN.safetensors\n"
          "        --out OUT.safetensors [--backend cpu] [--clip-skip K]\n"
          "      run one module on named input tensors and write named outputs\n"
          "  bench [--backend cpu] (--random-weights sd15|lcm-sd15 | --model PATH [--config DIR])\n"
          "        [--size PX] [--batch B] [--iters N] [--threads N]\n"
          "      time UNet evaluations; report GFLOP/s next to the backend's GEMM rate\n"
          "  render (--model PATH [--config DIR] | --random-weights sd15|lcm-sd15)\n"
          "         [--lora FILE[:SCALE]]... --prompt TEXT [--negative TEXT] [--width W --height H]\n"
          "         [--steps N] [--guidance G] [--seed S] [--clip-skip K] [--decoder vae|taesd]\n"
          "         [--taesd PATH] [--backend cpu] [--noise FILE] [--dump FILE] -o OUT.png\n"
          "      LCM text-to-image\n"
          "  render --model PATH [--config DIR] --scene SCENE.json [--frames N] [--taesd PATH]\n"
          "         [--noise FILE] [--dump FILE] -o OUT_DIR|OUT.png\n"
          "      a SemanticDraw scene (docs/scene-format.md): N streamed frames, or one image\n"
          "  serve [--config-file FILE] [--model PATH] [--taesd PATH] [--runtime-dir DIR]\n"
          "        [--backend cpu] [--lease-ms N] ...\n"
          "      run the daemon (settings: daemon/config.h, /etc/semdraw/semdrawd.conf)\n"
          "  version\n"
          "  help\n",
          to);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "tokenize") == 0) return cmd_tokenize(argc - 1, argv + 1);
    if (strcmp(cmd, "encode") == 0) return cmd_encode(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "render") == 0) return cmd_render(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "probe") == 0) return cmd_probe(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("semdrawd %s\n", SEMDRAWD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "semdrawd: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
