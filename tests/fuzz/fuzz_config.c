/*
 * fuzz_config: the config loader (config_parse) on arbitrary text. The secrets a config may
 * name through ${FZ_*} are set here; a config that loads is freed again.
 */
#include <stdlib.h>

#include "config.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    setenv("FZ_DEV", "fuzz-developer-key", 1);
    setenv("FZ_CUST", "fuzz-customer-key", 1);
    setenv("FZ_TOKEN", "fuzz-token-0001", 1);
    setenv("FZ_ADMIN", "fuzz-admin-token-0001", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *cfg = NULL;
    char err[1024];
    if (config_parse((const char *)data, size, "fuzz.json", &cfg, err, sizeof(err)) == ODSYNC_OK)
        config_free(cfg);
    return 0;
}
