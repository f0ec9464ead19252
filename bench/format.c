/* format.c: the dataset-formatting benchmark: Fashion-MNIST's 70,000 images formatted to
 * recordio/jpeg q95, recordio/raw and lmdb/raw with ava_format_run, against two ceilings
 * measured in the same run on the same images: a bare libjpeg-turbo encoding loop and a plain
 * sequential write of the same number of bytes. Prints figures (it is not a test): its exit
 * status only says whether the measurements could be taken. */
#include "benchutil.h"

#include "../src/common/buf.h"
#include "../src/common/err.h"
#include "../src/common/path.h"
#include "../src/data/format.h"
#include "../src/data/import.h"
#include "../src/data/job.h"
#include "../src/data/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#define FMNIST "/usr/share/datasets/fashion-mnist"
#define FMNIST_SPEC                                                                                \
    "idx:" FMNIST "/train-images-idx3-ubyte.gz," FMNIST "/train-labels-idx1-ubyte.gz"              \
    "+" FMNIST "/t10k-images-idx3-ubyte.gz," FMNIST "/t10k-labels-idx1-ubyte.gz"
#define QUALITY 95
#define TARGET 0.80           /* of each ceiling */
#define WRITE_CHUNK (1 << 20) /* the write ceiling's write(2) size */
#define MAX_THREADS 64
#define NCASES 3

/* What to measure (command-line options). */
struct opts {
    int threads, runs;
    bool keep;
    const char *data; /* parent of the temp dir */
};

/* The pack's images, copied into memory for the JPEG ceiling: n grey w x h images. */
struct images {
    uint8_t *px;
    uint32_t n;
    int w, h;
};

/* One formatting case and its figures (best of the runs; NAN = not measured). */
struct fcase {
    const char *name;
    enum ava_set_format format;
    enum ava_encoding encoding;
    double secs;       /* best ava_format_run wall time */
    int64_t samples;   /* in the set */
    int64_t bytes;     /* the set's files */
    double write_secs; /* best plain write of `bytes` */
    double cpu_secs;   /* user + sys CPU time of the best run (every thread) */
    long minflt;       /* minor page faults of the best run */
    /* JPEG cases: the bare encoding loop, run between their formatting runs */
    double jpeg_secs, jpeg_cpu; /* best pass, and its CPU time */
    uint64_t jpeg_bytes;
    bool done; /* every run completed */
};

/* One encoding thread of the JPEG ceiling. */
struct jpeg_arg {
    const struct images *im;
    uint32_t first, end; /* images [first, end) */
    uint64_t bytes;      /* JPEG bytes produced */
    int rc;
};

/* SIGINT/SIGTERM: ask every loop to end so that the cleanup runs. */
static void on_signal(int sig) {
    (void)sig;
    bench_stop = 1;
}

/* ava_format_run's progress hook: cancels the run once a signal came. */
static int on_progress(void *ctx, int64_t done, int64_t total) {
    (void)ctx;
    (void)done;
    (void)total;
    return bench_stop;
}

/* Seconds since t0 (a bench_mono_us value). */
static double secs_since(int64_t t0) {
    return (double)(bench_mono_us() - t0) / 1e6;
}

/* This process's CPU time (user + sys, every thread) in seconds and minor page faults. */
static void usage_now(double *cpu, long *minflt) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    *minflt = ru.ru_minflt;
}

/* Imports Fashion-MNIST into pack_dir as the import job does (ava_import_next +
 * ava_pack_add, then close, which fsyncs). Fills *n and *secs. Returns 0 or -1. */
static int import_pack(const char *pack_dir, uint32_t *n, double *secs) {
    char err[AVA_ERRLEN] = "";
    struct ava_importer *im = NULL;
    struct ava_pack_writer *pw = NULL;
    struct ava_sample s;
    int64_t t0 = bench_mono_us();
    int r = ava_import_open(FMNIST_SPEC, &im, err);
    if (r == 0)
        r = ava_mkdir_p(pack_dir, 0755, err);
    if (r == 0)
        r = ava_pack_writer_open(pack_dir, &pw, err);
    *n = 0;
    while (r == 0 && !bench_stop && (r = ava_import_next(im, &s, err)) == 1)
        if ((r = ava_pack_add(pw, &s, err)) == 0)
            ++*n;
    if (pw && r == 0)
        r = ava_pack_writer_close(pw, err);
    else if (pw)
        ava_pack_writer_close(pw, NULL);
    *secs = secs_since(t0);
    if (im)
        ava_import_close(im);
    if (r < 0)
        fprintf(stderr, "format: import: %s\n", err);
    return r < 0 || bench_stop ? -1 : 0;
}

/* Copies every image of the pack into memory (not timed); they must all be grey and of one
 * size. Returns 0 or -1. */
static int load_images(const char *pack_dir, struct images *im) {
    char err[AVA_ERRLEN] = "";
    struct ava_pack *p;
    struct ava_sample s;
    if (ava_pack_open(pack_dir, &p, err) < 0)
        return fprintf(stderr, "format: %s\n", err), -1;
    *im = (struct images){NULL, ava_pack_count(p), 0, 0};
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < im->n; i++) {
        if ((r = ava_pack_get(p, i, &s, err)) < 0)
            break;
        if (i == 0) {
            im->w = s.width;
            im->h = s.height;
            im->px = ava_xmalloc((size_t)im->n * s.len + 1);
        }
        if (s.pix != AVA_PIX_GRAY || s.width != im->w || s.height != im->h ||
            s.len != (size_t)im->w * (size_t)im->h)
            r = ava_err(err, AVA_EINVALID, "sample %u is not a %dx%d grey image", i, im->w, im->h);
        else
            memcpy(im->px + (size_t)i * s.len, s.data, s.len);
    }
    ava_pack_close(p);
    if (r < 0 || im->n == 0) {
        fprintf(stderr, "format: %s\n", r < 0 ? err : "the pack is empty");
        free(im->px);
        im->px = NULL;
        return -1;
    }
    return 0;
}

/* Thread body of the JPEG ceiling: one tjInitCompress, then tjCompress2 (q95, grey) of each
 * of its images into one preallocated buffer. */
static void *jpeg_main(void *arg) {
    struct jpeg_arg *a = arg;
    const struct images *im = a->im;
    size_t plane = (size_t)im->w * (size_t)im->h;
    unsigned long cap = tjBufSize(im->w, im->h, TJSAMP_GRAY);
    unsigned char *buf = ava_xmalloc(cap);
    tjhandle h = tjInitCompress();
    a->rc = h ? 0 : -1;
    for (uint32_t i = a->first; a->rc == 0 && i < a->end && !bench_stop; i++) {
        unsigned long size = cap;
        if (tjCompress2(h, im->px + i * plane, im->w, 0, im->h, TJPF_GRAY, &buf, &size, TJSAMP_GRAY,
                        QUALITY, TJFLAG_NOREALLOC) < 0) {
            fprintf(stderr, "format: tjCompress2: %s\n", tjGetErrorStr2(h));
            a->rc = -1;
        }
        a->bytes += size;
    }
    if (h)
        tjDestroy(h);
    free(buf);
    return NULL;
}

/* One pass of the JPEG ceiling on `threads` threads (each a contiguous share of the images).
 * Fills *secs, *cpu (CPU seconds, every thread) and *bytes. Returns 0 or -1. */
static int jpeg_pass(const struct images *im, int threads, double *secs, double *cpu,
                     uint64_t *bytes) {
    struct jpeg_arg a[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    int rc = 0, started = 0;
    double cpu0;
    long flt0;
    usage_now(&cpu0, &flt0);
    int64_t t0 = bench_mono_us();
    for (int t = 0; t < threads; t++) {
        a[t] = (struct jpeg_arg){im, (uint32_t)((uint64_t)im->n * t / threads),
                                 (uint32_t)((uint64_t)im->n * (t + 1) / threads), 0, 0};
        if (pthread_create(&th[t], NULL, jpeg_main, &a[t]) != 0)
            break;
        started++;
    }
    *bytes = 0;
    for (int t = 0; t < started; t++) {
        pthread_join(th[t], NULL);
        rc |= a[t].rc;
        *bytes += a[t].bytes;
    }
    *secs = secs_since(t0);
    usage_now(cpu, &flt0);
    *cpu -= cpu0;
    return started == threads && rc == 0 && !bench_stop ? 0 : -1;
}

/* One plain sequential write: `bytes` bytes from src (wrapping around its srclen bytes) in
 * write(2)s of WRITE_CHUNK, fsync, close; the file is then removed (not timed). Fills *secs.
 * Returns 0 or -1. */
static int write_pass(const char *path, const uint8_t *src, size_t srclen, int64_t bytes,
                      double *secs) {
    int64_t t0 = bench_mono_us();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fprintf(stderr, "format: %s: %s\n", path, strerror(errno)), -1;
    int64_t done = 0;
    int rc = 0;
    while (rc == 0 && done < bytes) {
        size_t off = (size_t)(done % (int64_t)(srclen - WRITE_CHUNK));
        size_t n = bytes - done < WRITE_CHUNK ? (size_t)(bytes - done) : WRITE_CHUNK;
        ssize_t w = write(fd, src + off, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = -1;
        else
            done += w;
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "format: %s: %s\n", path, strerror(errno));
    if (close(fd) < 0)
        rc = -1;
    *secs = secs_since(t0);
    unlink(path);
    return rc;
}

/* One timed ava_format_run of c into a fresh out_dir (removed afterwards, not timed). Fills
 * *secs, *cpu (CPU seconds, every thread), *flt (minor faults), c->samples and c->bytes.
 * Returns 0 or -1. */
static int format_pass(struct fcase *c, const struct opts *o, const char *pack_dir,
                       const char *out_dir, double *secs, double *cpu, long *flt) {
    struct ava_job_spec spec = {.kind = "format",
                                .format = c->format,
                                .percent = 100,
                                .seed = 0,
                                .mode = AVA_SPLIT_SHUFFLE,
                                .encoding = c->encoding,
                                .quality = QUALITY,
                                .threads = o->threads};
    struct ava_format_set sets[2];
    int nsets = 0;
    char err[AVA_ERRLEN] = "";
    if (ava_mkdir_p(out_dir, 0755, err) < 0)
        return fprintf(stderr, "format: %s\n", err), -1;
    double cpu0;
    long flt0;
    usage_now(&cpu0, &flt0);
    int64_t t0 = bench_mono_us();
    int r = ava_format_run(&spec, pack_dir, out_dir, on_progress, NULL, sets, &nsets, err);
    *secs = secs_since(t0);
    usage_now(cpu, flt);
    *cpu -= cpu0;
    *flt -= flt0;
    if (r < 0 || nsets != 1)
        fprintf(stderr, "format: %s: %s\n", c->name, r < 0 ? err : "not one set");
    else {
        c->samples = sets[0].samples;
        c->bytes = sets[0].bytes;
    }
    char e2[AVA_ERRLEN];
    if (ava_rm_rf(out_dir, e2) < 0)
        fprintf(stderr, "format: %s\n", e2);
    return r < 0 || nsets != 1 ? -1 : 0;
}

/* Runs case c `runs` times, each run followed by a pass of the bare JPEG loop (JPEG cases)
 * and a plain write of the bytes that run produced, so that a case and its ceilings see the
 * same moments of a noisy machine; keeps the best of each. Returns 0 or -1. */
static int run_case(struct fcase *c, const struct opts *o, const char *tmp, const char *pack_dir,
                    const struct images *im) {
    char out_dir[AVA_PATH_MAX], wfile[AVA_PATH_MAX];
    size_t srclen = (size_t)im->n * (size_t)im->w * (size_t)im->h;
    if (ava_path_join(out_dir, sizeof out_dir, NULL, tmp, "out", NULL) < 0 ||
        ava_path_join(wfile, sizeof wfile, NULL, tmp, "ceiling.bin", NULL) < 0 ||
        srclen <= 2 * WRITE_CHUNK)
        return -1;
    bool jpeg = c->encoding == AVA_ENC_JPEG;
    c->secs = c->write_secs = c->jpeg_secs = INFINITY;
    for (int r = 0; r < o->runs && !bench_stop; r++) {
        double s, ws, cpu, js = INFINITY, jcpu = 0;
        long flt;
        if (format_pass(c, o, pack_dir, out_dir, &s, &cpu, &flt) < 0 ||
            (jpeg && jpeg_pass(im, o->threads, &js, &jcpu, &c->jpeg_bytes) < 0) ||
            write_pass(wfile, im->px, srclen, c->bytes, &ws) < 0)
            return -1;
        if (s < c->secs) {
            c->secs = s;
            c->cpu_secs = cpu;
            c->minflt = flt;
        }
        if (jpeg && js < c->jpeg_secs) {
            c->jpeg_secs = js;
            c->jpeg_cpu = jcpu;
        }
        c->write_secs = fmin(c->write_secs, ws);
    }
    c->done = !bench_stop;
    return c->done ? 0 : -1;
}

/* Prints a case's figures and its ratios against the ceilings (the JPEG one for JPEG cases). */
static void print_case(const struct fcase *c, const struct opts *o, const struct images *im) {
    double jpeg_per_s = c->encoding == AVA_ENC_JPEG ? im->n / c->jpeg_secs : 0;
    double per_s = c->samples / c->secs, mbs = c->bytes / 1e6 / c->secs;
    double wmbs = c->bytes / 1e6 / c->write_secs;
    printf("%s: %" PRId64 " images, %.1f MB in %.3f s = %.0f images/s, %.1f MB/s\n", c->name,
           c->samples, c->bytes / 1e6, c->secs, per_s, mbs);
    printf("  (that run: %.3f s of CPU = %.2f cores busy on average, %ld minor page faults)\n",
           c->cpu_secs, c->cpu_secs / c->secs, c->minflt);
    if (jpeg_per_s > 0)
        printf("  JPEG ceiling (bare loop: tjInitCompress once per thread, tjCompress2 q%d "
               "TJSAMP_GRAY of each %dx%d image, %d thread(s)): %.3f s = %.0f images/s "
               "(%.1f MB of JPEG; %.2f cores busy)\n",
               QUALITY, im->w, im->h, o->threads, c->jpeg_secs, jpeg_per_s, c->jpeg_bytes / 1e6,
               c->jpeg_cpu / c->jpeg_secs);
    if (jpeg_per_s > 0 && c->jpeg_cpu / c->jpeg_secs < 0.9 * o->threads)
        printf("  (the bare loop did not get %d busy cores: the machine is busy, expect noise)\n",
               o->threads);
    printf("  write ceiling (write(2) of 1 MiB chunks + fsync, %.1f MB): %.3f s = %.1f MB/s\n",
           c->bytes / 1e6, c->write_secs, wmbs);
    if (jpeg_per_s > 0)
        printf("  images/s vs the bare JPEG loop: %.0f / %.0f = %.0f %%  [target >= 80 %%]\n",
               per_s, jpeg_per_s, 100 * per_s / jpeg_per_s);
    printf("  MB/s vs the write ceiling: %.1f / %.1f = %.0f %%  [%s]\n", mbs, wmbs,
           100 * mbs / wmbs,
           jpeg_per_s > 0 ? "the encoder bounds it: judged below" : "target >= 80 %");
    if (jpeg_per_s > 0) { /* its bytes come out of the encoder: that bounds its MB/s */
        double loop_mbs = c->bytes / 1e6 * jpeg_per_s / c->samples;
        printf("  (bound: at the bare JPEG loop's speed this case would write %.1f MB/s = %.0f %% "
               "of the write ceiling)\n",
               loop_mbs, 100 * loop_mbs / wmbs);
        printf("  MB/s vs its ceiling, the lower of the write ceiling and the bare JPEG loop's "
               "output: %.1f / %.1f = %.0f %%  [target >= 80 %%]\n",
               mbs, loop_mbs < wmbs ? loop_mbs : wmbs,
               100 * mbs / (loop_mbs < wmbs ? loop_mbs : wmbs));
    }
    fflush(stdout);
}

/* A case's MB/s against its ceiling: a plain write of its bytes, or, for a JPEG case whose
 * bytes the encoder produces more slowly than a disk takes them, the bare JPEG loop's output
 * rate at the case's bytes per image (whichever is lower). NAN when not measured. */
static double mbs_ratio(const struct fcase *c) {
    if (!c->done || !isfinite(c->secs) || !isfinite(c->write_secs))
        return NAN;
    double ceiling_secs = c->write_secs;
    if (c->encoding == AVA_ENC_JPEG && isfinite(c->jpeg_secs) && c->jpeg_secs > ceiling_secs)
        ceiling_secs = c->jpeg_secs; /* same bytes per image: the slower producer bounds it */
    return ceiling_secs / c->secs;
}

/* Prints one summary line: a target met, missed or not measured. */
static void judge(const char *what, double ratio) {
    char val[32] = "not measured";
    if (!isnan(ratio))
        snprintf(val, sizeof val, "%.0f %%", 100 * ratio);
    printf("  %-11s %-58s %s\n",
           isnan(ratio)      ? "[n/a]"
           : ratio >= TARGET ? "[met]"
                             : "[NOT MET]",
           what, val);
}

/* The closing summary of the targets (each >= 80 % of its ceiling). */
static void summary(const struct fcase *cs, int ncases) {
    char what[128];
    printf("\nsummary of targets (>= 80 %% of each ceiling):\n");
    for (int i = 0; i < ncases; i++) {
        const struct fcase *c = &cs[i];
        bool ok = c->done && isfinite(c->secs) && isfinite(c->write_secs);
        if (c->encoding == AVA_ENC_JPEG) {
            snprintf(what, sizeof what, "%s images/s vs the bare JPEG loop", c->name);
            judge(what, ok && isfinite(c->jpeg_secs) ? c->jpeg_secs / c->secs : NAN);
        }
        if (c->encoding == AVA_ENC_JPEG)
            snprintf(what, sizeof what, "%s MB/s vs min(write, JPEG loop output)", c->name);
        else
            snprintf(what, sizeof what, "%s MB/s vs a plain write of its bytes", c->name);
        judge(what, ok ? mbs_ratio(c) : NAN);
    }
}

/* Prints the usage text. */
static void usage(FILE *f) {
    fprintf(f, "usage: format [--threads N] [--runs N] [--data DIR] [--keep]\n"
               "Imports Fashion-MNIST (" FMNIST ") into a pack in a temp dir below DIR\n"
               "(default: $TMPDIR or /tmp), formats it to recordio/jpeg q95, recordio/raw and\n"
               "lmdb/raw with N encoder threads (default 2), best of N runs (default 3), and\n"
               "prints images/s and MB/s against a bare JPEG loop and a plain sequential write.\n"
               "--keep leaves the temp dir (the pack) in place.\n");
}

/* Parses a count from 1 to max for option a. Returns 0 or -1. */
static int parse_count(const char *a, const char *v, int max, int *out) {
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || n < 1 || n > max) {
        fprintf(stderr, "format: %s needs a count from 1 to %d\n", a, max);
        return -1;
    }
    *out = (int)n;
    return 0;
}

/* Fills o from argv. Returns 0, 1 for --help, -1 on a usage error. */
static int parse_opts(int argc, char **argv, struct opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads")) {
            if (parse_count(a, v, MAX_THREADS, &o->threads) < 0)
                return -1;
            i++;
        } else if (!strcmp(a, "--runs")) {
            if (parse_count(a, v, 100, &o->runs) < 0)
                return -1;
            i++;
        } else if (!strcmp(a, "--data") && v) {
            o->data = argv[++i];
        } else if (!strcmp(a, "--keep")) {
            o->keep = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            return 1;
        } else {
            fprintf(stderr, "format: unknown or incomplete option '%s'\n", a);
            return -1;
        }
    }
    return 0;
}

/* Prints what is measured where. */
static void header(const struct opts *o, const char *tmp) {
    char when[32];
    struct utsname u;
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    uname(&u);
    printf("ava format benchmark, %s, %s %s, %ld online CPUs\n", when, u.sysname, u.release,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("data in %s (%s); %d encoder thread(s); best of %d run(s) each; MB = 10^6 bytes\n", tmp,
           bench_fs_name(tmp), o->threads, o->runs);
    printf("nothing is dropped from the page cache: the pack is read through it, and every "
           "output (and ceiling file) is fsynced\n");
    fflush(stdout);
}

/* Imports, loads the images and measures the three cases. Returns 0 or -1. */
static int run_all(const struct opts *o, const char *tmp, struct fcase *cs) {
    char pack_dir[AVA_PATH_MAX];
    struct images im = {0};
    uint32_t n;
    double secs;
    if (ava_path_join(pack_dir, sizeof pack_dir, NULL, tmp, "pack", NULL) < 0 ||
        import_pack(pack_dir, &n, &secs) < 0)
        return -1;
    printf("import %s\n  -> pack: %u samples in %.2f s = %.0f images/s  [no target]\n", FMNIST_SPEC,
           n, secs, n / secs);
    if (load_images(pack_dir, &im) < 0)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < NCASES; i++) {
        rc = run_case(&cs[i], o, tmp, pack_dir, &im);
        if (rc == 0)
            print_case(&cs[i], o, &im);
    }
    free(im.px);
    return rc;
}

int main(int argc, char **argv) {
    struct opts o = {.threads = 2, .runs = 3};
    int p = parse_opts(argc, argv, &o);
    if (p != 0) {
        usage(p > 0 ? stdout : stderr);
        return p > 0 ? 0 : 2;
    }
    if (!o.data) {
        const char *t = getenv("TMPDIR");
        o.data = t && *t ? t : "/tmp";
    }
    char tmp[AVA_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/ava-format-XXXXXX", o.data);
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "format: mkdtemp in %s: %s\n", o.data, strerror(errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct fcase cs[NCASES] = {
        {"recordio/jpeg q95", AVA_FMT_RECORDIO, AVA_ENC_JPEG, NAN, 0, 0, NAN, NAN, 0, NAN, NAN, 0,
         false},
        {"recordio/raw", AVA_FMT_RECORDIO, AVA_ENC_RAW, NAN, 0, 0, NAN, NAN, 0, NAN, NAN, 0, false},
        {"lmdb/raw", AVA_FMT_LMDB, AVA_ENC_RAW, NAN, 0, 0, NAN, NAN, 0, NAN, NAN, 0, false},
    };
    header(&o, tmp);
    int rc = run_all(&o, tmp, cs);
    summary(cs, NCASES);
    char err[AVA_ERRLEN];
    if (o.keep)
        printf("kept %s\n", tmp);
    else if (ava_rm_rf(tmp, err) < 0)
        fprintf(stderr, "format: %s\n", err);
    if (rc < 0 || bench_stop)
        fprintf(stderr, "format: %s\n", bench_stop ? "interrupted" : "a measurement failed");
    return rc < 0 || bench_stop ? 1 : 0;
}
