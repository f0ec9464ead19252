/* path.h: joining and creating paths. Every path built from a name that came from a request
 * or a file goes through ava_path_join, which refuses components that could escape. */
#ifndef AVA_COMMON_PATH_H
#define AVA_COMMON_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define AVA_PATH_MAX 4096

/* Joins base with the given components (NULL-terminated list) into out (outlen bytes).
 * Each component must be non-empty, contain no '/', and not be "." or "..". Returns 0,
 * AVA_EINVALID for a bad component, AVA_ETOOLARGE when the result would not fit. */
int ava_path_join(char *out, size_t outlen, char *err, const char *base, ...)
    __attribute__((sentinel));

/* True when the component is acceptable to ava_path_join. */
bool ava_path_component_ok(const char *c);

/* Creates dir and its missing parents with the given mode. Returns 0 or AVA_EIO. */
int ava_mkdir_p(const char *dir, unsigned mode, char *err);

/* Removes a directory tree (like rm -rf, never following symlinks). Returns 0 or AVA_EIO. */
int ava_rm_rf(const char *path, char *err);

/* Fills out with the directory holding the running executable (from /proc/self/exe). */
int ava_exe_dir(char *out, size_t outlen);

#endif
