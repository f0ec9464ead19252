/* gpu.c: NVML through dlopen: nvmlInit_v2, nvmlDeviceGetCount_v2, nvmlShutdown. */
#include "gpu.h"

#include "../common/err.h"

#include <dlfcn.h>

int ava_gpu_detect(int *out, int cap, int *n, char *why) {
    *n = 0;
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        ava_err(why, 0, "NVML (libnvidia-ml.so.1) is not installed");
        return 0;
    }
    int (*init)(void) = (int (*)(void))dlsym(h, "nvmlInit_v2");
    int (*count)(unsigned *) = (int (*)(unsigned *))dlsym(h, "nvmlDeviceGetCount_v2");
    int (*shutdown)(void) = (int (*)(void))dlsym(h, "nvmlShutdown");
    unsigned c = 0;
    if (!init || !count || !shutdown) {
        ava_err(why, 0, "NVML lacks nvmlInit_v2 or nvmlDeviceGetCount_v2");
    } else if (init() != 0) {
        ava_err(why, 0, "nvmlInit failed (is the NVIDIA driver loaded?)");
    } else {
        if (count(&c) != 0) {
            ava_err(why, 0, "nvmlDeviceGetCount failed");
            c = 0;
        }
        shutdown();
    }
    for (unsigned i = 0; i < c && (int)i < cap; i++)
        out[(*n)++] = (int)i;
    dlclose(h);
    return 0;
}
