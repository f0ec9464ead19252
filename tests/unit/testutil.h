/* testutil.h: what every cmocka program here shares. Include after <cmocka.h>. */
#ifndef AVA_TESTS_TESTUTIL_H
#define AVA_TESTS_TESTUTIL_H

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Fails the running test with a message naming the table case. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_msg(__VA_ARGS__);                                                                 \
    } while (0)

#endif
