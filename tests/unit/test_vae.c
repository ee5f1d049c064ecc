/*
 * AutoencoderKL and TAESD against diffusers (goldens from
 * tools/reference/gen_models.py): encoder means and decoder images, batch 2,
 * non-square images.
 */
#include "golden_util.h"
#include "semd/checkpoint.h"
#include "semd/vae.h"

#define TOL 1e-4

static void check_vae(const char *model, const char *config)
{
    semd_backend *be;
    semd_checkpoint *ck;
    semd_vae *vae;
    semd_st_file *g = golden_open("golden/vae_tiny.safetensors");
    ASSERT_OK(semd_backend_cpu_new(0, &be));
    ASSERT_OK(semd_checkpoint_open(golden_data(model), config ? golden_data(config) : NULL, &ck));
    ASSERT_OK(semd_checkpoint_vae(ck, be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &vae));
    ASSERT(semd_vae_config_of(vae)->scaling_factor == 0.18215f);
    semd_tensor *image = golden_tensor(be, g, "sample", 0), *latent = golden_tensor(be, g, "latent", 0);
    semd_tensor *mean, *decoded;
    ASSERT_OK(semd_vae_encode(vae, image, &mean));
    golden_expect(g, "expected_latent_mean", mean, TOL);
    ASSERT_OK(semd_vae_decode(vae, latent, &decoded));
    golden_expect(g, "expected_sample", decoded, TOL);
    semd_tensor *none;
    ASSERT_EQ(semd_vae_decode(vae, image, &none), SEMD_ESHAPE); /* 3 channels, not 4 */
    ASSERT(none == NULL);
    semd_tensor_free(image), semd_tensor_free(latent), semd_tensor_free(mean), semd_tensor_free(decoded);
    semd_vae_free(vae), semd_checkpoint_free(ck), semd_backend_free(be), semd_st_close(g);
}

TEST(vae_encode_decode) { check_vae("models/tiny-sd15", NULL); }

/* The LDM single file stores the mid-attention projections as 1x1 convs, in F16. */
TEST(vae_single_file) { check_vae("models/tiny-sd15.safetensors", "models/tiny-sd15"); }

TEST(vae_decoder_only)
{
    semd_backend *be;
    semd_checkpoint *ck;
    semd_vae *vae;
    ASSERT_OK(semd_backend_cpu_new(1, &be));
    ASSERT_OK(semd_checkpoint_open(golden_data("models/tiny-sd15"), NULL, &ck));
    ASSERT_OK(semd_checkpoint_vae(ck, be, SEMD_VAE_DECODER, &vae));
    semd_tensor *mean = NULL;
    int64_t ne[4] = {1, 3, 16, 16};
    semd_tensor *image;
    ASSERT_OK(semd_tensor_new(be, 4, ne, &image));
    ASSERT_EQ(semd_vae_encode(vae, image, &mean), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "encoder not loaded");
    semd_tensor_free(image);
    semd_vae_free(vae), semd_checkpoint_free(ck), semd_backend_free(be);
}

static void check_taesd(semd_taesd *t, const semd_st_file *g, semd_backend *be, int enc, int dec)
{
    if (enc) {
        semd_tensor *image = golden_tensor(be, g, "sample", 0), *lat;
        ASSERT_OK(semd_taesd_encode(t, image, &lat));
        golden_expect(g, "expected_latent_mean", lat, TOL);
        semd_tensor_free(image), semd_tensor_free(lat);
    }
    if (dec) {
        semd_tensor *latent = golden_tensor(be, g, "latent", 0), *img;
        ASSERT_OK(semd_taesd_decode(t, latent, &img));
        golden_expect(g, "expected_sample", img, TOL);
        semd_tensor_free(latent), semd_tensor_free(img);
    }
}

TEST(taesd_diffusers_folder)
{
    semd_backend *be;
    semd_taesd *t;
    semd_st_file *g = golden_open("golden/taesd.safetensors");
    ASSERT_OK(semd_backend_cpu_new(0, &be));
    ASSERT_OK(semd_taesd_open(golden_data("models/taesd"), be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &t));
    check_taesd(t, g, be, 1, 1);
    semd_taesd_free(t), semd_backend_free(be), semd_st_close(g);
}

/* Split the diffusers file into the original taesd_encoder / taesd_decoder naming. */
static void write_original(const char *half, int shift, const char *out)
{
    semd_st_file *src;
    ASSERT_OK(semd_st_open(golden_data("models/taesd/diffusion_pytorch_model.safetensors"), &src));
    semd_st_writer *w = semd_st_writer_new();
    char prefix[32], name[128];
    snprintf(prefix, sizeof prefix, "%s.layers.", half);
    for (size_t i = 0; i < semd_st_count(src); i++) {
        const semd_st_tensor *t = semd_st_at(src, i);
        if (strncmp(t->name, prefix, strlen(prefix)) != 0) continue;
        char *rest;
        long idx = strtol(t->name + strlen(prefix), &rest, 10);
        snprintf(name, sizeof name, "%ld%s", idx + shift, rest);
        ASSERT_OK(semd_st_writer_add(w, name, t->dtype, t->ndim, t->shape, t->data));
    }
    ASSERT_OK(semd_st_writer_save(w, out));
    semd_st_writer_free(w);
    semd_st_close(src);
}

TEST(taesd_original_files)
{
    const char *enc = semd_test_path(semd_test_tmpdir(), "taesd_encoder.safetensors");
    const char *dec = semd_test_path(semd_test_tmpdir(), "taesd_decoder.safetensors");
    write_original("encoder", 0, enc);
    write_original("decoder", 1, dec); /* the original decoder starts with a weightless clamp */
    semd_backend *be;
    semd_taesd *t;
    semd_st_file *g = golden_open("golden/taesd.safetensors");
    ASSERT_OK(semd_backend_cpu_new(0, &be));
    ASSERT_OK(semd_taesd_open(enc, be, SEMD_VAE_ENCODER, &t));
    check_taesd(t, g, be, 1, 0);
    semd_taesd_free(t);
    ASSERT_OK(semd_taesd_open(dec, be, SEMD_VAE_DECODER, &t));
    check_taesd(t, g, be, 0, 1);
    semd_taesd_free(t);
    ASSERT_EQ(semd_taesd_open(dec, be, SEMD_VAE_ENCODER | SEMD_VAE_DECODER, &t), SEMD_EINVAL);
    ASSERT_EQ(semd_taesd_open(enc, be, SEMD_VAE_DECODER, &t), SEMD_ENOTFOUND);
    ASSERT_CONTAINS(semd_last_error(), "missing tensor '1.weight'");
    semd_backend_free(be), semd_st_close(g);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(vae_encode_decode),
    TEST_ENTRY(vae_single_file),
    TEST_ENTRY(vae_decoder_only),
    TEST_ENTRY(taesd_diffusers_folder),
    TEST_ENTRY(taesd_original_files),
    {0},
};

SEMD_TEST_MAIN(tests)
