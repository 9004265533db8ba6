// The C that Swift cannot import from OpenSSL 3: macros (SSL_CTX_set_min_proto_version and
// friends are #defines over SSL_CTX_ctrl) and varargs. Each wrapper is named COpenSSL_<C name>
// so that grepping the C name finds it. Nothing here holds state or allocates.
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

static inline int COpenSSL_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int COpenSSL_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long COpenSSL_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline long COpenSSL_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline int COpenSSL_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}
static inline int COpenSSL_SSL_CTX_build_cert_chain(SSL_CTX *ctx, long flags) {
    return (int)SSL_CTX_build_cert_chain(ctx, flags);
}
static inline int COpenSSL_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
static inline void COpenSSL_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) {
    SSL_CTX_set_read_ahead(ctx, yes);
}

// The option and mode bits are macros of type uint64_t/long; give Swift plain constants.
static const uint64_t COpenSSL_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
static const uint64_t COpenSSL_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
static const uint64_t COpenSSL_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;
static const uint64_t COpenSSL_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;
static const uint64_t COpenSSL_SSL_OP_IGNORE_UNEXPECTED_EOF = SSL_OP_IGNORE_UNEXPECTED_EOF;
static const long COpenSSL_SSL_MODE_RELEASE_BUFFERS = SSL_MODE_RELEASE_BUFFERS;
static const long COpenSSL_SSL_MODE_ENABLE_PARTIAL_WRITE = SSL_MODE_ENABLE_PARTIAL_WRITE;
static const long COpenSSL_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
static const long COpenSSL_SSL_MODE_NO_AUTO_CHAIN = SSL_MODE_NO_AUTO_CHAIN;
static const long COpenSSL_SSL_SESS_CACHE_OFF = SSL_SESS_CACHE_OFF;
static const long COpenSSL_SSL_SESS_CACHE_CLIENT = SSL_SESS_CACHE_CLIENT;
static const int COpenSSL_TLS1_2_VERSION = TLS1_2_VERSION;
static const int COpenSSL_TLS1_3_VERSION = TLS1_3_VERSION;
static const int COpenSSL_SSL_FILETYPE_PEM = SSL_FILETYPE_PEM;
static const int COpenSSL_SSL_VERIFY_NONE = SSL_VERIFY_NONE;
static const int COpenSSL_SSL_VERIFY_PEER = SSL_VERIFY_PEER;
static const int COpenSSL_SSL_VERIFY_FAIL_IF_NO_PEER_CERT = SSL_VERIFY_FAIL_IF_NO_PEER_CERT;

// ERR_GET_LIB / ERR_GET_REASON are macros (inline functions in 3.0, but keep one path).
static inline int COpenSSL_ERR_GET_REASON(unsigned long e) { return ERR_GET_REASON(e); }
static inline int COpenSSL_ERR_GET_LIB(unsigned long e) { return ERR_GET_LIB(e); }

// Subject-alternative-name stacks: sk_GENERAL_NAME_* are generated inline functions behind macros.
static inline int COpenSSL_sk_GENERAL_NAME_num(const GENERAL_NAMES *names) {
    return sk_GENERAL_NAME_num(names);
}
static inline GENERAL_NAME *COpenSSL_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int i) {
    return sk_GENERAL_NAME_value(names, i);
}
// Session-ticket keys (SSL_CTX_set_tlsext_ticket_key_evp_cb): sets up the ticket cipher
// (AES-256-CBC) and its HMAC (SHA-256) from one key of the server's ring. OSSL_PARAM arrays are
// C compound literals over string constants; building them from Swift would copy every name.
// With `encrypt`, `iv` is filled with fresh random bytes; otherwise it is the ticket's IV.
// Returns 1 on success, 0 on failure (the caller answers -1: an internal error).
static inline int COpenSSL_ticket_key_setup(EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac,
                                            const unsigned char aes_key[32],
                                            const unsigned char hmac_key[32],
                                            unsigned char *iv, int encrypt) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)hmac_key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (encrypt) {
        if (RAND_bytes(iv, 16) != 1) return 0;
        if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, aes_key, iv) != 1) return 0;
    } else {
        if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), NULL, aes_key, iv) != 1) return 0;
    }
    return EVP_MAC_CTX_set_params(mac, params) == 1;
}

// OPENSSL_free is a macro over CRYPTO_free with the caller's file and line.
static inline void COpenSSL_OPENSSL_free(void *p) { OPENSSL_free(p); }

// SHA-256 over two buffers (a journal record's chained digest: the previous digest, then the
// record). The low-level SHA256_* calls are deprecated in OpenSSL 3 but skip the provider
// dispatch and context allocation of EVP: about 0.8 us per 176-byte record here against 1.4 us
// for EVP with a reused context and 3.5 us for EVP_Digest. No state, no allocation.
#include <openssl/sha.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static inline void COpenSSL_SHA256_two(const void *a, size_t alen, const void *b, size_t blen,
                                       unsigned char out[32]) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, a, alen);
    SHA256_Update(&c, b, blen);
    SHA256_Final(out, &c);
}
#pragma GCC diagnostic pop

#endif
