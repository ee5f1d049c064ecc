/*
 * make_envelope_seeds OUT_DIR: writes the seed corpus of fuzz_envelope, one
 * valid Envelope per body kind (and a second of the kinds whose handlers take
 * different paths: masks as raw alpha and as RLE, backgrounds as an image and
 * as a colour), and one reply too large for the harness's decode budget, each packed with protobuf-c into OUT_DIR/<name>.pb. The
 * requests pass the daemon's validation, so fuzzing starts from messages that
 * reach every handler. Regenerate after changing control.proto:
 *   cmake --build build-fuzz --target make_envelope_seeds &&
 *   build-fuzz/tests/fuzz/make_envelope_seeds tests/fuzz/corpus/fuzz_envelope
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semdraw/v1/control.pb-c.h"

typedef Semdraw__V1__Envelope Envelope;

static const char *out_dir;

static void write_seed(const char *name, Envelope *e)
{
    e->has_protocol_version = 1, e->protocol_version = 1;
    e->has_request_id = 1, e->request_id = 42;
    size_t n = semdraw__v1__envelope__get_packed_size(e);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || semdraw__v1__envelope__pack(e, buf) != n) {
        fprintf(stderr, "make_envelope_seeds: cannot pack %s\n", name);
        exit(1);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.pb", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make_envelope_seeds: cannot write %s\n", path);
        exit(1);
    }
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_envelope_seeds OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];

    { /* the handshake */
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Hello m = SEMDRAW__V1__HELLO__INIT;
        m.has_min_version = 1, m.min_version = 1, m.has_max_version = 1, m.max_version = 1;
        m.client_name = "fuzz", m.sdk_version = "0.1.0";
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_HELLO, e.hello = &m;
        write_seed("hello", &e);
    }
    { /* every CreateCanvas field, timesteps strictly increasing in 0..49 */
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__CreateCanvas m = SEMDRAW__V1__CREATE_CANVAS__INIT;
        uint32_t ts[] = {0, 4, 12, 25, 37};
        m.has_width = 1, m.width = 64, m.has_height = 1, m.height = 48;
        m.has_seed = 1, m.seed = 2024, m.has_profile = 1, m.profile = SEMDRAW__V1__PROFILE__PROFILE_REFERENCE;
        m.n_timesteps = 5, m.timesteps = ts;
        m.has_ring_slots = 1, m.ring_slots = 4, m.has_decoder = 1, m.decoder = SEMDRAW__V1__DECODER__DECODER_VAE;
        m.model = "", m.has_detached = 1, m.detached = 1;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_CREATE_CANVAS, e.create_canvas = &m;
        write_seed("create_canvas", &e);
    }
    { /* a new layer with a raw 16x8 alpha mask */
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__SetLayer m = SEMDRAW__V1__SET_LAYER__INIT;
        Semdraw__V1__Mask k = SEMDRAW__V1__MASK__INIT;
        uint8_t alpha[16 * 8];
        for (size_t i = 0; i < sizeof alpha; i++) alpha[i] = (uint8_t)(i % 16 < 8 ? 255 : 0);
        k.has_width = 1, k.width = 16, k.has_height = 1, k.height = 8;
        k.has_alpha = 1, k.alpha.data = alpha, k.alpha.len = sizeof alpha;
        m.has_canvas_id = 1, m.canvas_id = 1, m.prompt = "a red apple", m.negative = "blurry";
        m.mask = &k, m.has_mask_std = 1, m.mask_std = 8.0f, m.has_mask_strength = 1, m.mask_strength = 1.0f;
        m.has_prompt_strength = 1, m.prompt_strength = 0.95f;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_LAYER, e.set_layer = &m;
        write_seed("set_layer_alpha", &e);
    }
    { /* a change to layer 0 with an RLE mask: 64 x 255, 32 x 0, 32 x 128 make 16x8 */
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__SetLayer m = SEMDRAW__V1__SET_LAYER__INIT;
        Semdraw__V1__Mask k = SEMDRAW__V1__MASK__INIT;
        uint8_t rle[] = {64, 255, 32, 0, 32, 128};
        k.has_width = 1, k.width = 16, k.has_height = 1, k.height = 8;
        k.has_rle = 1, k.rle.data = rle, k.rle.len = sizeof rle;
        m.has_canvas_id = 1, m.canvas_id = 1, m.has_layer_id = 1, m.layer_id = 0, m.mask = &k;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_LAYER, e.set_layer = &m;
        write_seed("set_layer_rle", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__RemoveLayer m = SEMDRAW__V1__REMOVE_LAYER__INIT;
        m.has_canvas_id = 1, m.canvas_id = 1, m.has_layer_id = 1, m.layer_id = 0;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_REMOVE_LAYER, e.remove_layer = &m;
        write_seed("remove_layer", &e);
    }
    { /* an 8x4 RGB image (the harness takes an 8-pixel-wide canvas from the byte count) */
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__SetBackground m = SEMDRAW__V1__SET_BACKGROUND__INIT;
        uint8_t rgb[8 * 4 * 3];
        for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 7);
        m.has_canvas_id = 1, m.canvas_id = 1, m.prompt = "a meadow", m.negative = "";
        m.has_rgb = 1, m.rgb.data = rgb, m.rgb.len = sizeof rgb;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_BACKGROUND, e.set_background = &m;
        write_seed("set_background_rgb", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__SetBackground m = SEMDRAW__V1__SET_BACKGROUND__INIT;
        m.has_canvas_id = 1, m.canvas_id = 1, m.has_color = 1, m.color = 0xEBE1D2;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_BACKGROUND, e.set_background = &m;
        write_seed("set_background_color", &e);
    }
    { /* every live parameter */
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__SetCanvasParams m = SEMDRAW__V1__SET_CANVAS_PARAMS__INIT;
        m.has_canvas_id = 1, m.canvas_id = 1;
        m.has_guidance_scale = 1, m.guidance_scale = 1.5f;
        m.has_embedded_guidance_scale = 1, m.embedded_guidance_scale = 8.5f;
        m.has_bootstrap_steps = 1, m.bootstrap_steps = 2;
        m.has_bootstrap_mix_steps = 1, m.bootstrap_mix_steps = 1.0f;
        m.has_mask_type = 1, m.mask_type = SEMDRAW__V1__MASK_TYPE__MASK_DISCRETE;
        m.has_cover_alpha = 1, m.cover_alpha = 0.3f, m.has_seed = 1, m.seed = 7;
        m.has_reset_latent = 1, m.reset_latent = 1, m.has_autoflush = 1, m.autoflush = 1;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_PARAMS, e.set_params = &m;
        write_seed("set_params", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Commit m = SEMDRAW__V1__COMMIT__INIT;
        m.has_canvas_id = 1, m.canvas_id = 1;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_COMMIT, e.commit = &m;
        write_seed("commit", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__StartStream m = SEMDRAW__V1__START_STREAM__INIT;
        m.has_canvas_id = 1, m.canvas_id = 1, m.has_target_fps = 1, m.target_fps = 30.0f;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_START_STREAM, e.start_stream = &m;
        write_seed("start_stream", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__StopStream m = SEMDRAW__V1__STOP_STREAM__INIT;
        m.has_canvas_id = 1, m.canvas_id = 1;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_STOP_STREAM, e.stop_stream = &m;
        write_seed("stop_stream", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Snapshot m = SEMDRAW__V1__SNAPSHOT__INIT;
        m.has_canvas_id = 1, m.canvas_id = 1;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SNAPSHOT, e.snapshot = &m;
        write_seed("snapshot", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__AttachCanvas m = SEMDRAW__V1__ATTACH_CANVAS__INIT;
        uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        m.has_canvas_id = 1, m.canvas_id = 1, m.has_key = 1, m.key.data = key, m.key.len = sizeof key;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_ATTACH_CANVAS, e.attach_canvas = &m;
        write_seed("attach_canvas", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__CloseCanvas m = SEMDRAW__V1__CLOSE_CANVAS__INIT;
        m.has_canvas_id = 1, m.canvas_id = 1;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_CLOSE_CANVAS, e.close_canvas = &m;
        write_seed("close_canvas", &e);
    }
    { /* the bodies without fields */
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Heartbeat hb = SEMDRAW__V1__HEARTBEAT__INIT;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_HEARTBEAT, e.heartbeat = &hb;
        write_seed("heartbeat", &e);
        Semdraw__V1__GetStatus gs = SEMDRAW__V1__GET_STATUS__INIT;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_GET_STATUS, e.get_status = &gs;
        write_seed("get_status", &e);
        Semdraw__V1__ListCanvases lc = SEMDRAW__V1__LIST_CANVASES__INIT;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_LIST_CANVASES, e.list_canvases = &lc;
        write_seed("list_canvases", &e);
        Semdraw__V1__Goodbye gb = SEMDRAW__V1__GOODBYE__INIT;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_GOODBYE, e.goodbye = &gb;
        write_seed("goodbye", &e);
    }
    { /* daemon -> client: a status reply with one canvas (a client decodes these) */
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Reply r = SEMDRAW__V1__REPLY__INIT;
        Semdraw__V1__Status st = SEMDRAW__V1__STATUS__INIT;
        Semdraw__V1__CanvasInfo info = SEMDRAW__V1__CANVAS_INFO__INIT;
        Semdraw__V1__CanvasInfo *infos[] = {&info};
        uint8_t key[16] = {0};
        info.has_canvas_id = 1, info.canvas_id = 1, info.has_width = 1, info.width = 64;
        info.has_height = 1, info.height = 48, info.ring_path = "/run/semdraw/ring-1";
        info.has_key = 1, info.key.data = key, info.key.len = sizeof key;
        st.has_model_state = 1, st.model_state = SEMDRAW__V1__MODEL_STATE__MODEL_READY;
        st.has_clients = 1, st.clients = 1, st.n_canvases = 1, st.canvases = infos;
        r.result_case = SEMDRAW__V1__REPLY__RESULT_STATUS, r.status = &st;
        e.has_instance_id = 1, e.instance_id = 99;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_REPLY, e.reply = &r;
        write_seed("reply_status", &e);
    }
    { /* 8000 empty CanvasInfo: 16 KB on the wire, over fuzz_envelope's 1 MiB decode budget in memory */
        enum { N = 8000 };
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Reply r = SEMDRAW__V1__REPLY__INIT;
        Semdraw__V1__Status st = SEMDRAW__V1__STATUS__INIT;
        static Semdraw__V1__CanvasInfo infos[N];
        static Semdraw__V1__CanvasInfo *ptrs[N];
        for (int i = 0; i < N; i++) semdraw__v1__canvas_info__init(&infos[i]), ptrs[i] = &infos[i];
        st.n_canvases = N, st.canvases = ptrs;
        r.result_case = SEMDRAW__V1__REPLY__RESULT_STATUS, r.status = &st;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_REPLY, e.reply = &r;
        write_seed("over_budget", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Error m = SEMDRAW__V1__ERROR__INIT;
        m.has_code = 1, m.code = -4, m.message = "the message is not a valid Envelope";
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_ERROR, e.error = &m;
        write_seed("error", &e);
    }
    {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Event ev = SEMDRAW__V1__EVENT__INIT;
        Semdraw__V1__FrameReady fr = SEMDRAW__V1__FRAME_READY__INIT;
        fr.has_canvas_id = 1, fr.canvas_id = 1, fr.has_seq = 1, fr.seq = 10, fr.has_t_ns = 1, fr.t_ns = 123456789;
        ev.kind_case = SEMDRAW__V1__EVENT__KIND_FRAME_READY, ev.frame_ready = &fr;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_EVENT, e.event = &ev;
        write_seed("event_frame_ready", &e);
    }
    return 0;
}
