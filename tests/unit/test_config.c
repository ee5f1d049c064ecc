/* semdrawd.conf parsing and command-line overrides. */
#include <stdlib.h>

#include "config.h"
#include "harness.h"
#include "semd/status.h"

static const char *write_conf(const char *text)
{
    const char *path = semd_test_path(semd_test_tmpdir(), "semdrawd.conf");
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs(text, f);
    fclose(f);
    return path;
}

TEST(defaults_and_environment)
{
    semd_config c;
    unsetenv("SEMDRAW_RUNTIME_DIR");
    ASSERT_OK(semd_config_init(&c));
    ASSERT_STREQ(c.runtime_dir, "/run/semdraw");
    ASSERT_STREQ(c.backend, "cpu");
    ASSERT_EQ(semd_config_check(&c), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "no model");
    semd_config_free(&c);
    setenv("SEMDRAW_RUNTIME_DIR", "/tmp/semd-rt", 1);
    ASSERT_OK(semd_config_init(&c));
    ASSERT_STREQ(c.runtime_dir, "/tmp/semd-rt");
    semd_config_free(&c);
}

TEST(file_then_command_line)
{
    semd_config c;
    ASSERT_OK(semd_config_init(&c));
    ASSERT_OK(semd_config_load(&c, write_conf("# semdraw\n"
                                              "model = /models/lcm-dreamshaper  # the UNet\n"
                                              "\n"
                                              "lora = /loras/a.safetensors:0.8\n"
                                              "lora=/loras/b.safetensors\n"
                                              "backend = cuda\n"
                                              "max_layers = 8\n"
                                              "lease_ms = 5000\n"
                                              "max_device_memory_mib = 3072\n")));
    ASSERT_STREQ(c.model, "/models/lcm-dreamshaper");
    ASSERT_EQ(c.n_loras, 2);
    ASSERT_STREQ(c.loras[1], "/loras/b.safetensors");
    ASSERT_EQ(c.max_layers, 8);
    ASSERT_EQ(c.max_device_memory_mib, 3072);
    ASSERT_OK(semd_config_set(&c, "backend", "cpu", "--backend"));   /* the command line wins */
    ASSERT_OK(semd_config_set(&c, "model", "/other", "--model"));
    ASSERT_STREQ(c.backend, "cpu");
    ASSERT_STREQ(c.model, "/other");
    ASSERT_OK(semd_config_check(&c));
    semd_config_free(&c);
}

TEST(errors_name_file_and_line)
{
    semd_config c;
    ASSERT_OK(semd_config_init(&c));
    const char *path = write_conf("model = /m\nmax_layres = 4\n");
    ASSERT_EQ(semd_config_load(&c, path), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "semdrawd.conf:2: unknown setting 'max_layres'");
    ASSERT_EQ(semd_config_load(&c, write_conf("max_layers = lots\n")), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), ":1: max_layers = lots is not an integer in 1..64");
    ASSERT_EQ(semd_config_load(&c, write_conf("ring_slots = 99\n")), SEMD_EINVAL);
    ASSERT_EQ(semd_config_load(&c, write_conf("just words\n")), SEMD_EFORMAT);
    ASSERT_CONTAINS(semd_last_error(), "expected 'key = value'");
    ASSERT_EQ(semd_config_load(&c, write_conf("backend = tpu\n")), SEMD_EINVAL);
    ASSERT_EQ(semd_config_load(&c, write_conf("model =\n")), SEMD_EFORMAT);
    ASSERT_EQ(semd_config_load(&c, semd_test_path(semd_test_tmpdir(), "absent.conf")), SEMD_EIO);
    ASSERT_OK(semd_config_set(&c, "runtime_dir", "relative", "--runtime-dir"));
    ASSERT_OK(semd_config_set(&c, "model", "/m", "--model"));
    ASSERT_EQ(semd_config_check(&c), SEMD_EINVAL);
    semd_config_free(&c);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(defaults_and_environment),
    TEST_ENTRY(file_then_command_line),
    TEST_ENTRY(errors_name_file_and_line),
    {0},
};

SEMD_TEST_MAIN(tests)
