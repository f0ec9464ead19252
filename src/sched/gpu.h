/* gpu.h: discovering the machine's GPUs through NVML, loaded with dlopen so that avad
 * builds and runs on machines without the NVIDIA driver. */
#ifndef AVA_SCHED_GPU_H
#define AVA_SCHED_GPU_H

/* Fills out (capacity cap) with the indices 0..n-1 of the GPUs NVML reports and sets *n.
 * Without libnvidia-ml.so.1 or when NVML fails, *n = 0 and the reason goes to why (may be
 * NULL, AVA_ERRLEN bytes). Always returns 0: no GPU is not an error. */
int ava_gpu_detect(int *out, int cap, int *n, char *why);

#endif
