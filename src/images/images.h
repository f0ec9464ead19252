/* images.h: the image registry: manifests (validation of the JSON users and the install
 * give) and the public images loaded from the install's share dir at start. */
#ifndef AVA_IMAGES_IMAGES_H
#define AVA_IMAGES_IMAGES_H

#include "../store/store.h"

#include <jansson.h>

#define AVA_IMAGE_DESC_MAX 1000

/* Validates a manifest object and fills out (to be released with ava_image_free). Accepted
 * keys: name, tag, kind, description, entry, env, metrics_parser, requires, public; any
 * other key is refused. `requires` (array of absolute paths) marks the image unavailable,
 * with the reason, when one of them does not exist. `public` is reported in *public_out
 * (may be NULL). Returns 0 or AVA_EINVALID naming the field. */
int ava_image_from_manifest(json_t *manifest, struct ava_image *out, bool *public_out, char *err);

/* Loads every *.json manifest of dir (the public images of the install) into the store as
 * public images. A malformed manifest fails the load with its file name in the message. */
int ava_images_load_public(struct ava_store *st, const char *dir, int *count, char *err);

/* The same, with "${AVA_EXAMPLES}" in the manifests' text replaced by examples_dir (where the
 * install keeps the example trainings, so shipped images can name their entry points). */
int ava_images_load_public_at(struct ava_store *st, const char *dir, const char *examples_dir,
                              int *count, char *err);

/* Splits "name:tag" into its parts (each at least 1 and at most 64 valid characters). */
int ava_image_ref_split(const char *ref, char name[65], char tag[65], char *err);

#endif
