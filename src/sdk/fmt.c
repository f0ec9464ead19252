/* fmt.c: libava's line formatter: line protocol lines without printf, doubles by Grisu2 so that
 * every value reads back exactly (strtod) at a fraction of snprintf("%.17g")'s cost. */
#include "ava_internal.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* ---- Grisu2 (Florian Loitsch, "Printing Floating-Point Numbers Quickly and Accurately with
 * Integers", PLDI 2010), in the form of nlohmann/json's to_chars: 64-bit "do it yourself"
 * floats, cached powers of ten every 8 decades. The digits it produces always lie strictly
 * inside the rounding interval of v, so they read back to v; they are the shortest such digits
 * in about 99.9 % of cases (otherwise one digit longer). ---- */

struct diyfp {
    uint64_t f;
    int e;
};

#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 u128; /* a GCC/Clang extension, hence __extension__ */
#endif

/* The product of two diy floats, rounded to 64 bits (the low half rounds the high half). */
static struct diyfp diy_mul(struct diyfp x, struct diyfp y) {
#ifdef __SIZEOF_INT128__
    u128 p = (u128)x.f * y.f;
    uint64_t h = (uint64_t)(p >> 64) + (((uint64_t)p) >> 63);
#else
    uint64_t a = x.f >> 32, b = x.f & 0xFFFFFFFFu, c = y.f >> 32, d = y.f & 0xFFFFFFFFu;
    uint64_t ac = a * c, bc = b * c, ad = a * d, bd = b * d;
    uint64_t mid = (bd >> 32) + (ad & 0xFFFFFFFFu) + (bc & 0xFFFFFFFFu) + (1u << 31);
    uint64_t h = ac + (ad >> 32) + (bc >> 32) + (mid >> 32);
#endif
    return (struct diyfp){h, x.e + y.e + 64};
}

/* Shifts x left until its top bit is set (x.f != 0). */
static struct diyfp diy_normalize(struct diyfp x) {
    int s = __builtin_clzll(x.f);
    return (struct diyfp){x.f << s, x.e - s};
}

/* 10^k ~= f * 2^e, f normalised and rounded to nearest, for k = -300, -292, ..., 324
 * (generated with exact rational arithmetic). */
struct cached_power {
    uint64_t f;
    int e;
    int k;
};
static const struct cached_power cached_powers[] = {
    {0xAB70FE17C79AC6CAULL, -1060, -300}, {0xFF77B1FCBEBCDC4FULL, -1034, -292},
    {0xBE5691EF416BD60CULL, -1007, -284}, {0x8DD01FAD907FFC3CULL, -980, -276},
    {0xD3515C2831559A83ULL, -954, -268},  {0x9D71AC8FADA6C9B5ULL, -927, -260},
    {0xEA9C227723EE8BCBULL, -901, -252},  {0xAECC49914078536DULL, -874, -244},
    {0x823C12795DB6CE57ULL, -847, -236},  {0xC21094364DFB5637ULL, -821, -228},
    {0x9096EA6F3848984FULL, -794, -220},  {0xD77485CB25823AC7ULL, -768, -212},
    {0xA086CFCD97BF97F4ULL, -741, -204},  {0xEF340A98172AACE5ULL, -715, -196},
    {0xB23867FB2A35B28EULL, -688, -188},  {0x84C8D4DFD2C63F3BULL, -661, -180},
    {0xC5DD44271AD3CDBAULL, -635, -172},  {0x936B9FCEBB25C996ULL, -608, -164},
    {0xDBAC6C247D62A584ULL, -582, -156},  {0xA3AB66580D5FDAF6ULL, -555, -148},
    {0xF3E2F893DEC3F126ULL, -529, -140},  {0xB5B5ADA8AAFF80B8ULL, -502, -132},
    {0x87625F056C7C4A8BULL, -475, -124},  {0xC9BCFF6034C13053ULL, -449, -116},
    {0x964E858C91BA2655ULL, -422, -108},  {0xDFF9772470297EBDULL, -396, -100},
    {0xA6DFBD9FB8E5B88FULL, -369, -92},   {0xF8A95FCF88747D94ULL, -343, -84},
    {0xB94470938FA89BCFULL, -316, -76},   {0x8A08F0F8BF0F156BULL, -289, -68},
    {0xCDB02555653131B6ULL, -263, -60},   {0x993FE2C6D07B7FACULL, -236, -52},
    {0xE45C10C42A2B3B06ULL, -210, -44},   {0xAA242499697392D3ULL, -183, -36},
    {0xFD87B5F28300CA0EULL, -157, -28},   {0xBCE5086492111AEBULL, -130, -20},
    {0x8CBCCC096F5088CCULL, -103, -12},   {0xD1B71758E219652CULL, -77, -4},
    {0x9C40000000000000ULL, -50, 4},      {0xE8D4A51000000000ULL, -24, 12},
    {0xAD78EBC5AC620000ULL, 3, 20},       {0x813F3978F8940984ULL, 30, 28},
    {0xC097CE7BC90715B3ULL, 56, 36},      {0x8F7E32CE7BEA5C70ULL, 83, 44},
    {0xD5D238A4ABE98068ULL, 109, 52},     {0x9F4F2726179A2245ULL, 136, 60},
    {0xED63A231D4C4FB27ULL, 162, 68},     {0xB0DE65388CC8ADA8ULL, 189, 76},
    {0x83C7088E1AAB65DBULL, 216, 84},     {0xC45D1DF942711D9AULL, 242, 92},
    {0x924D692CA61BE758ULL, 269, 100},    {0xDA01EE641A708DEAULL, 295, 108},
    {0xA26DA3999AEF774AULL, 322, 116},    {0xF209787BB47D6B85ULL, 348, 124},
    {0xB454E4A179DD1877ULL, 375, 132},    {0x865B86925B9BC5C2ULL, 402, 140},
    {0xC83553C5C8965D3DULL, 428, 148},    {0x952AB45CFA97A0B3ULL, 455, 156},
    {0xDE469FBD99A05FE3ULL, 481, 164},    {0xA59BC234DB398C25ULL, 508, 172},
    {0xF6C69A72A3989F5CULL, 534, 180},    {0xB7DCBF5354E9BECEULL, 561, 188},
    {0x88FCF317F22241E2ULL, 588, 196},    {0xCC20CE9BD35C78A5ULL, 614, 204},
    {0x98165AF37B2153DFULL, 641, 212},    {0xE2A0B5DC971F303AULL, 667, 220},
    {0xA8D9D1535CE3B396ULL, 694, 228},    {0xFB9B7CD9A4A7443CULL, 720, 236},
    {0xBB764C4CA7A44410ULL, 747, 244},    {0x8BAB8EEFB6409C1AULL, 774, 252},
    {0xD01FEF10A657842CULL, 800, 260},    {0x9B10A4E5E9913129ULL, 827, 268},
    {0xE7109BFBA19C0C9DULL, 853, 276},    {0xAC2820D9623BF429ULL, 880, 284},
    {0x80444B5E7AA7CF85ULL, 907, 292},    {0xBF21E44003ACDD2DULL, 933, 300},
    {0x8E679C2F5E44FF8FULL, 960, 308},    {0xD433179D9C8CB841ULL, 986, 316},
    {0x9E19DB92B4E31BA9ULL, 1013, 324},
};

enum { GRISU_ALPHA = -60, GRISU_GAMMA = -32 };

/* The cached power c = 10^k that brings a binary exponent e into [alpha, gamma] once multiplied:
 * alpha <= c.e + e + 64 <= gamma. */
static struct cached_power cached_power_for(int e) {
    int f = GRISU_ALPHA - e - 1;
    int k = (f * 78913) / (1 << 18) + (f > 0); /* ceil(f * log10(2)) */
    int index = (300 + k + 7) / 8;
    return cached_powers[index];
}

static const uint32_t pow10_32[] = {1,      10,      100,      1000,      10000,
                                    100000, 1000000, 10000000, 100000000, 1000000000};

/* The number of decimal digits of n: log10 from the bit length (1233 / 4096 ~ log10(2)), then
 * one comparison. */
static int digits32(uint32_t n) {
    int t = ((32 - __builtin_clz(n | 1)) * 1233) >> 12;
    int d = t + (n >= pow10_32[t]);
    return d > 0 ? d : 1;
}

/* v / 10^k with a constant divisor per case, which compilers turn into a multiplication (a
 * variable divisor costs a hardware division per digit). */
static uint32_t div_pow10(uint32_t v, int k) {
    switch (k) {
    case 9:
        return v / 1000000000u;
    case 8:
        return v / 100000000u;
    case 7:
        return v / 10000000u;
    case 6:
        return v / 1000000u;
    case 5:
        return v / 100000u;
    case 4:
        return v / 10000u;
    case 3:
        return v / 1000u;
    case 2:
        return v / 100u;
    case 1:
        return v / 10u;
    default:
        return v;
    }
}

/* Moves the last digit down while that brings the digits closer to w and keeps them inside the
 * interval (dist = M+ - w, delta = M+ - M-, rest = M+ - digits, ten_k = one unit of the last
 * digit, all scaled alike). */
static void grisu_round(char *buf, int len, uint64_t dist, uint64_t delta, uint64_t rest,
                        uint64_t ten_k) {
    while (rest < dist && delta - rest >= ten_k &&
           (rest + ten_k < dist || dist - rest > rest + ten_k - dist)) {
        buf[len - 1]--;
        rest += ten_k;
    }
}

/* Generates the digits of M+ until they lie within delta of it; *dexp receives the decimal
 * exponent adjustment. Requires alpha <= M+.e <= gamma. */
static int grisu_digits(char *buf, int *dexp, struct diyfp mminus, struct diyfp w,
                        struct diyfp mplus) {
    uint64_t delta = mplus.f - mminus.f;
    uint64_t dist = mplus.f - w.f;
    int shift = -mplus.e;
    uint64_t one = (uint64_t)1 << shift;
    uint32_t p1 = (uint32_t)(mplus.f >> shift); /* integral part; < 2^32 as -e >= 32 */
    uint64_t p2 = mplus.f & (one - 1);          /* fractional part */
    int n = digits32(p1);
    int len = 0;
    while (n > 0) {
        uint32_t d = div_pow10(p1, n - 1);
        p1 -= d * pow10_32[n - 1];
        buf[len++] = (char)('0' + d);
        n--;
        uint64_t rest = ((uint64_t)p1 << shift) + p2;
        if (rest <= delta) {
            *dexp += n;
            grisu_round(buf, len, dist, delta, rest, (uint64_t)pow10_32[n] << shift);
            return len;
        }
    }
    int m = 0;
    for (;;) {
        p2 *= 10;
        buf[len++] = (char)('0' + (p2 >> shift));
        p2 &= one - 1;
        m++;
        delta *= 10;
        dist *= 10;
        if (p2 <= delta)
            break;
    }
    *dexp -= m;
    grisu_round(buf, len, dist, delta, p2, one);
    return len;
}

/* Decimal digits (at most 17) of v > 0, finite, such that digits * 10^*dexp reads back as v.
 * Returns the number of digits. */
static int grisu2(char *buf, int *dexp, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint64_t be = bits >> 52, bf = bits & (((uint64_t)1 << 52) - 1);
    struct diyfp w = be == 0 ? (struct diyfp){bf, -1074}
                             : (struct diyfp){bf | ((uint64_t)1 << 52), (int)be - 1075};
    /* the rounding interval's bounds m- and m+, halfway to the neighbours; the lower neighbour
     * is closer when v is a power of two (not the smallest normal) */
    bool lower_closer = bf == 0 && be > 1;
    struct diyfp mplus = diy_normalize((struct diyfp){2 * w.f + 1, w.e - 1});
    struct diyfp mminus =
        lower_closer ? (struct diyfp){4 * w.f - 1, w.e - 2} : (struct diyfp){2 * w.f - 1, w.e - 1};
    mminus.f <<= mminus.e - mplus.e;
    mminus.e = mplus.e;
    w = diy_normalize(w);

    struct cached_power c = cached_power_for(mplus.e);
    struct diyfp cp = {c.f, c.e};
    struct diyfp ww = diy_mul(w, cp);
    struct diyfp wm = diy_mul(mminus, cp);
    struct diyfp wp = diy_mul(mplus, cp);
    /* the products are off by up to one unit: shrink the interval to stay safely inside */
    wm.f++;
    wp.f--;
    *dexp = -c.k;
    return grisu_digits(buf, dexp, wm, ww, wp);
}

size_t ava__fmt_double(char *out, double v) {
    char *p = out;
    if (signbit(v)) {
        *p++ = '-';
        v = -v;
    }
    if (v == 0) {
        *p++ = '0';
        return (size_t)(p - out);
    }
    char d[24];
    int dexp;
    int n = grisu2(d, &dexp, v);
    while (n > 1 && d[n - 1] == '0') {
        n--;
        dexp++;
    }
    int x = n + dexp - 1; /* exponent of the first digit */
    if (x >= -4 && x < 17) {
        if (dexp >= 0) { /* an integer: digits, then zeros */
            memcpy(p, d, (size_t)n);
            p += n;
            memset(p, '0', (size_t)dexp);
            p += dexp;
        } else if (x >= 0) { /* ddd.ddd */
            memcpy(p, d, (size_t)(x + 1));
            p += x + 1;
            *p++ = '.';
            memcpy(p, d + x + 1, (size_t)(n - x - 1));
            p += n - x - 1;
        } else { /* 0.000ddd */
            *p++ = '0';
            *p++ = '.';
            memset(p, '0', (size_t)(-x - 1));
            p += -x - 1;
            memcpy(p, d, (size_t)n);
            p += n;
        }
        return (size_t)(p - out);
    }
    *p++ = d[0];
    if (n > 1) {
        *p++ = '.';
        memcpy(p, d + 1, (size_t)(n - 1));
        p += n - 1;
    }
    *p++ = 'e';
    *p++ = x < 0 ? '-' : '+';
    unsigned ax = (unsigned)(x < 0 ? -x : x);
    if (ax >= 100)
        *p++ = (char)('0' + ax / 100);
    *p++ = (char)('0' + ax / 10 % 10);
    *p++ = (char)('0' + ax % 10);
    return (size_t)(p - out);
}

/* ---- integers and lines ---- */

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

/* The number of decimal digits of v. */
static int u64_digits(uint64_t v) {
    if (v <= UINT32_MAX)
        return digits32((uint32_t)v);
    int n = 1;
    for (;;) {
        if (v < 10)
            return n;
        if (v < 100)
            return n + 1;
        if (v < 1000)
            return n + 2;
        if (v < 10000)
            return n + 3;
        v /= 10000;
        n += 4;
    }
}

/* Writes v < 2^32 as exactly n digits (zero-padded) ending at end, in 32-bit arithmetic. */
static void put_digits32(char *end, uint32_t v, int n) {
    while (n >= 2) {
        end -= 2;
        memcpy(end, digit_pairs + 2 * (v % 100), 2);
        v /= 100;
        n -= 2;
    }
    if (n)
        end[-1] = (char)('0' + v % 10);
}

/* Writes v as exactly n digits (zero-padded) ending at end. */
static void put_digits(char *end, uint64_t v, int n) {
    while (v > UINT32_MAX) {
        end -= 2;
        memcpy(end, digit_pairs + 2 * (v % 100), 2);
        v /= 100;
        n -= 2;
    }
    put_digits32(end, (uint32_t)v, n);
}

size_t ava__fmt_u64(char *out, uint64_t v) {
    int n = u64_digits(v);
    put_digits(out + n, v, n);
    return (size_t)n;
}

size_t ava__fmt_line(char *out, const char *name, size_t name_len, const char *phase,
                     size_t phase_len, int64_t epoch, double value, int64_t step, int64_t ts_ns) {
    char *p = out;
    memcpy(p, name, name_len);
    p += name_len;
    if (phase_len > 0) {
        memcpy(p, ",phase=", 7);
        p += 7;
        memcpy(p, phase, phase_len);
        p += phase_len;
    }
    if (epoch >= 0) {
        memcpy(p, ",epoch=", 7);
        p += 7;
        p += ava__fmt_u64(p, (uint64_t)epoch);
    }
    memcpy(p, " value=", 7);
    p += 7;
    p += ava__fmt_double(p, value);
    memcpy(p, ",step=", 6);
    p += 6;
    p += ava__fmt_u64(p, (uint64_t)step);
    *p++ = 'i';
    *p++ = ' ';
    /* seconds, then the nanoseconds as 9 digits: two short conversions instead of a long one */
    uint64_t sec = (uint64_t)ts_ns / 1000000000u, nsec = (uint64_t)ts_ns % 1000000000u;
    if (sec > 0) {
        p += ava__fmt_u64(p, sec);
        put_digits32(p + 9, (uint32_t)nsec, 9);
        p += 9;
    } else {
        p += ava__fmt_u64(p, nsec);
    }
    *p++ = '\n';
    return (size_t)(p - out);
}
