/* tandem.h - the C ABI of the Tandem inference core.
 *
 * This is the only public header. It is C11 and includes only <stdint.h>, so every signature is
 * blittable and the binding generator (bindings/) needs no compiler resource headers.
 *
 * Conventions
 * - Every name has the prefix tdm_ (types, functions) or TDM_ (constants).
 * - Handles are opaque. Each tdm_X_create / tdm_X_load has a tdm_X_free; free accepts NULL.
 * - Every fallible call returns tdm_status (0 = TDM_OK) and writes its results through out-params.
 *   On failure tdm_last_error() returns a message for the calling thread.
 * - Options are structs passed by pointer whose first field is struct_size. Fill them with
 *   tdm_X_options_init() and then change what you need. Fields are only ever appended; the library
 *   reads only the fields that fit in struct_size, so an older caller keeps working.
 * - Sizes and counts are uint64_t, token ids int32_t, flags uint8_t (0 = false, 1 = true).
 * - No C++ exception ever crosses this boundary.
 *
 * Thread safety
 * - A tdm_model is immutable after load and may be shared by any number of sessions on any threads.
 * - A tdm_session is single-threaded: call it from one thread at a time. It keeps its model alive.
 * - A tdm_sampler is single-threaded (it owns a random-number state).
 * - Callbacks run on the calling thread, before the call that invoked them returns; they must not
 *   unwind (no C++ exceptions, no longjmp).
 */
#ifndef TANDEM_H
#define TANDEM_H

#include <stdint.h>

#if defined(_WIN32)
#  if defined(TANDEM_BUILDING_LIBRARY)
#    define TDM_API __declspec(dllexport)
#  else
#    define TDM_API __declspec(dllimport)
#  endif
#else
#  define TDM_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a signature, a struct layout or a meaning changes incompatibly. The facade
 * refuses a library whose tdm_abi_version() differs from the value it was generated against. */
#define TDM_ABI_VERSION 1u

/* Largest top-K that tdm_token_stats can hold. */
#define TDM_MAX_TOP_K 64

/* ------------------------------------------------------------------------------------------------
 * Status codes and errors
 * ----------------------------------------------------------------------------------------------*/

typedef enum tdm_status {
    TDM_OK = 0,
    TDM_ERR_INVALID_ARGUMENT = 1,    /* a NULL pointer, a value out of range, a NaN, bad UTF-8 */
    TDM_ERR_NOT_FOUND = 2,           /* a path or a file inside a model folder does not exist */
    TDM_ERR_IO = 3,                  /* a file exists but cannot be read or mapped */
    TDM_ERR_INVALID_MODEL = 4,       /* config.json or safetensors are malformed or inconsistent */
    TDM_ERR_UNSUPPORTED = 5,         /* a valid but unsupported architecture, dtype or feature */
    TDM_ERR_CONTEXT_FULL = 6,        /* the tokens do not fit in the context (recoverable) */
    TDM_ERR_TOKEN_OUT_OF_RANGE = 7,  /* a token id < 0 or >= vocab_size */
    TDM_ERR_OUT_OF_MEMORY = 8,
    TDM_ERR_BACKEND_UNAVAILABLE = 9, /* the device asked for is not compiled in or not present */
    TDM_ERR_DEVICE = 10,             /* the device reported an error (CUDA message included) */
    TDM_ERR_CANCELLED = 11,          /* an abort callback asked to stop (recoverable) */
    TDM_ERR_INVALID_STATE = 12,      /* e.g. asking for logits before any forward pass */
    TDM_ERR_INTERNAL = 13,           /* a bug: please report with tdm_last_error() */
    TDM_ERR_CALLBACK = 14            /* a caller's callback (e.g. a routing policy) reported failure */
} tdm_status;

/* The message of the last failed call on this thread, or "" if none. The pointer is valid until
 * the next tdm_ call on this thread. Never NULL. */
TDM_API const char* tdm_last_error(void);

/* A constant name for a status code, e.g. "TDM_ERR_NOT_FOUND". Never NULL. */
TDM_API const char* tdm_status_name(int32_t status);

/* ------------------------------------------------------------------------------------------------
 * Version and build information
 * ----------------------------------------------------------------------------------------------*/

/* TDM_ABI_VERSION of the library actually loaded. */
TDM_API uint32_t tdm_abi_version(void);

typedef enum tdm_device {
    TDM_DEVICE_CPU = 0,
    TDM_DEVICE_CUDA = 1
} tdm_device;

typedef struct tdm_build_info {
    uint32_t struct_size;
    uint32_t abi_version;
    const char* version;        /* library version, e.g. "0.1.0"; static storage */
    const char* compiler;       /* e.g. "GNU 12.2.0"; static storage */
    const char* cpu_features;   /* kernels chosen at run time, e.g. "avx512f avx512_bf16"; static */
    uint8_t has_cpu;            /* always 1 */
    uint8_t has_cuda;           /* 1 if the CUDA backend was compiled in */
    uint8_t cuda_device_found;  /* 1 if a supported GPU is present now */
} tdm_build_info;

TDM_API tdm_status tdm_get_build_info(tdm_build_info* out);

/* ------------------------------------------------------------------------------------------------
 * Callbacks
 * ----------------------------------------------------------------------------------------------*/

/* Load progress: done and total in bytes (total may be 0 when unknown). Runs on the loading
 * thread. Return 0 to continue, non-zero to cancel (the load then fails with TDM_ERR_CANCELLED). */
typedef int32_t (*tdm_progress_fn)(uint64_t done, uint64_t total, void* user_data);

/* Abort check, called between layers of long forward passes. Runs on the calling thread.
 * Return non-zero to stop; the call then fails with TDM_ERR_CANCELLED and the session is rolled
 * back to its length before the call. */
typedef int32_t (*tdm_abort_fn)(void* user_data);

/* ------------------------------------------------------------------------------------------------
 * Models
 * ----------------------------------------------------------------------------------------------*/

typedef struct tdm_model tdm_model;

typedef struct tdm_model_options {
    uint32_t struct_size;
    int32_t device;              /* tdm_device; default TDM_DEVICE_CPU */
    int32_t device_index;        /* GPU ordinal for TDM_DEVICE_CUDA; default 0 */
    int32_t threads;             /* CPU threads for sessions that do not say; 0 = all cores */
    tdm_progress_fn progress;    /* optional; NULL = no progress reports */
    void* progress_user_data;
} tdm_model_options;

TDM_API void tdm_model_options_init(tdm_model_options* options);

/* Loads a Hugging Face model folder (config.json + model.safetensors or
 * model.safetensors.index.json). options may be NULL for the defaults. path is UTF-8. */
TDM_API tdm_status tdm_model_load(const char* path, const tdm_model_options* options,
                                  tdm_model** out_model);

TDM_API void tdm_model_free(tdm_model* model);

typedef enum tdm_dtype {
    TDM_DTYPE_F32 = 0,
    TDM_DTYPE_F16 = 1,
    TDM_DTYPE_BF16 = 2
} tdm_dtype;

typedef struct tdm_model_info {
    uint32_t struct_size;
    const char* architecture;    /* e.g. "LlamaForCausalLM"; valid while the model lives */
    uint32_t layers;
    uint32_t hidden_size;
    uint32_t intermediate_size;
    uint32_t heads;
    uint32_t kv_heads;
    uint32_t head_dim;
    uint32_t vocab_size;
    uint32_t context_length;     /* max_position_embeddings */
    uint32_t sliding_window;     /* 0 = none */
    int32_t dtype;               /* tdm_dtype of the stored weights */
    int32_t device;              /* tdm_device the model runs on */
    uint8_t tie_word_embeddings;
    float rms_norm_eps;
    float rope_theta;
    uint64_t parameter_count;
    int32_t bos_token_id;        /* -1 if none */
    uint32_t eos_token_count;    /* number of ids in eos_token_ids (config + generation_config) */
    const int32_t* eos_token_ids;/* valid while the model lives */
} tdm_model_info;

TDM_API tdm_status tdm_model_get_info(const tdm_model* model, tdm_model_info* out);

/* ------------------------------------------------------------------------------------------------
 * Sessions: one sequence, its KV cache and its last logits
 * ----------------------------------------------------------------------------------------------*/

typedef struct tdm_session tdm_session;

typedef struct tdm_session_options {
    uint32_t struct_size;
    uint32_t kv_capacity;        /* tokens the KV cache holds; 0 = the model's context length */
    int32_t threads;             /* CPU threads; 0 = the model's default */
} tdm_session_options;

TDM_API void tdm_session_options_init(tdm_session_options* options);

/* The session keeps the model alive: the model may be freed before the session. */
TDM_API tdm_status tdm_session_create(tdm_model* model, const tdm_session_options* options,
                                      tdm_session** out_session);

TDM_API void tdm_session_free(tdm_session* session);

/* Attention method for a prefill (ALGORITHMS.md sections 3 and 4). Decode is always dense. */
typedef enum tdm_attention {
    TDM_ATTENTION_DENSE = 0,
    TDM_ATTENTION_XATTENTION = 1,    /* antidiagonal block scoring, cumulative-threshold selection */
    TDM_ATTENTION_FLEXPREFILL = 2    /* per-head query-aware or vertical-slash pattern, gamma coverage */
} tdm_attention;

/* Compatibility switches that reproduce quirks of the reference implementations (bit flags). */
typedef enum tdm_sparse_compat {
    TDM_SPARSE_COMPAT_NONE = 0,
    TDM_SPARSE_COMPAT_FLEX_BUDGET_128 = 1,  /* FlexPrefill budgets use "// 128 + 1" whatever the block size */
    TDM_SPARSE_COMPAT_FLEX_JSD_NAN = 2      /* FlexPrefill: 0 log 0 gives NaN, so such a head is vertical-slash */
} tdm_sparse_compat;

typedef struct tdm_prefill_options {
    uint32_t struct_size;
    uint8_t all_logits;          /* keep the logits of every new position, not just the last */
    int32_t attention;           /* tdm_attention; default TDM_ATTENTION_DENSE */
    tdm_abort_fn abort;          /* optional */
    void* abort_user_data;
    /* Block-sparse prefill knobs (ignored for dense). Prompts shorter than a few blocks run dense. */
    uint32_t block_size;         /* tokens per attention block: 64 or 128; default 128 */
    uint32_t xattn_stride;       /* XAttention antidiagonal stride S (divides block_size); default 8 */
    float xattn_threshold;       /* XAttention cumulative threshold tau in (0, 1]+; default 0.9 */
    const float* xattn_thresholds; /* optional per-layer x per-head table [layers * heads], row-major;
                                    overrides xattn_threshold; borrowed for the duration of the call */
    float flex_gamma;            /* FlexPrefill coverage gamma in (0, 1]; default 0.95 */
    float flex_tau;              /* FlexPrefill Jensen-Shannon distance threshold; default 0.1 */
    uint32_t flex_min_budget;    /* FlexPrefill minimum budget in tokens; default 1024 */
    uint32_t flex_max_budget;    /* FlexPrefill maximum budget in tokens; 0 = no cap (default) */
    uint32_t sparse_compat;      /* tdm_sparse_compat flags; default 0 (the clean behaviour) */
    uint8_t xattn_fp8;           /* XAttention: score blocks from fp8 E4M3 copies of Q and K (per-head power-of-two scale); default 0 */
} tdm_prefill_options;

TDM_API void tdm_prefill_options_init(tdm_prefill_options* options);

/* Appends n_tokens tokens to the session and runs them through the model as one batch.
 * options may be NULL. Fails with TDM_ERR_CONTEXT_FULL if the tokens do not fit (nothing is
 * appended), TDM_ERR_TOKEN_OUT_OF_RANGE for a bad id, TDM_ERR_INVALID_ARGUMENT for n_tokens == 0.
 * Afterwards the session holds the logits of the last position (of every new position with
 * all_logits), readable with tdm_session_get_logits until the next forward or truncate. */
TDM_API tdm_status tdm_session_prefill(tdm_session* session, const int32_t* tokens,
                                       uint64_t n_tokens, const tdm_prefill_options* options);

/* Appends one token: the same as a prefill of one token, on the fast single-token path. */
TDM_API tdm_status tdm_session_decode(tdm_session* session, int32_t token);

/* Rolls the KV cache back to its first n_tokens tokens (n_tokens <= length). The held logits are
 * dropped. */
TDM_API tdm_status tdm_session_truncate(tdm_session* session, uint64_t n_tokens);

/* Tokens currently in the KV cache. */
TDM_API tdm_status tdm_session_length(const tdm_session* session, uint64_t* out_length);

/* The KV capacity and the context limit (min of capacity and max_position_embeddings). */
TDM_API tdm_status tdm_session_capacity(const tdm_session* session, uint64_t* out_capacity);

/* The attention density of the session's last prefill: for each layer and query head, the fraction of
 * causal (query block, key block) pairs whose attention was computed (1 for dense). out receives
 * layers * heads values, row-major by layer (out may be NULL when out_len is 0); out_mean (optional)
 * receives their mean. Fails with TDM_ERR_INVALID_STATE before the first prefill. */
TDM_API tdm_status tdm_session_attention_density(const tdm_session* session, float* out,
                                                 uint64_t out_len, float* out_mean);

/* Number of logit rows held (0 before the first forward, 1 after a decode, n after a prefill with
 * all_logits) and the vocabulary size. */
TDM_API tdm_status tdm_session_logits_shape(const tdm_session* session, uint64_t* out_rows,
                                            uint64_t* out_vocab);

/* Copies logit row `row` (0 = the oldest held row) into out[0..vocab). */
TDM_API tdm_status tdm_session_get_logits(const tdm_session* session, uint64_t row, float* out,
                                          uint64_t out_len);

/* ------------------------------------------------------------------------------------------------
 * Uncertainty statistics (ALGORITHMS.md sections 1 and 5)
 *
 * Always computed from the raw logits, i.e. the model's own distribution at temperature 1,
 * whatever the sampling temperature.
 * ----------------------------------------------------------------------------------------------*/

typedef struct tdm_token_stats {
    uint32_t struct_size;
    uint32_t top_k;                     /* entries filled in the top_* arrays */
    float entropy;                      /* nats */
    float entropy_bits;                 /* entropy / ln 2 */
    float entropy_normalized;           /* entropy / ln V, in [0, 1] */
    float max_prob;                     /* exp(z_max - lse) */
    float logsumexp;                    /* lse of the logits */
    float au;                           /* LogTokU aleatoric uncertainty over the top-K logits */
    float eu;                           /* LogTokU epistemic uncertainty, K / (sum relu(z_k) + K) */
    int32_t top_ids[TDM_MAX_TOP_K];     /* descending by logit; ties by lower id first */
    float top_logits[TDM_MAX_TOP_K];
    float top_probs[TDM_MAX_TOP_K];
} tdm_token_stats;

/* Statistics of one logit vector. top_k in [1, TDM_MAX_TOP_K] and <= vocab; LogTokU uses the
 * top_k largest logits (K = 2 is the method's default). */
TDM_API tdm_status tdm_stats_from_logits(const float* logits, uint64_t vocab, uint32_t top_k,
                                         tdm_token_stats* out);

/* The same for the session's held logit row `row`. */
TDM_API tdm_status tdm_session_stats(const tdm_session* session, uint64_t row, uint32_t top_k,
                                     tdm_token_stats* out);

/* LogTokU on explicit evidence values (the cross-language tests use it): AU and EU of the
 * first k values of alpha (k in [1, TDM_MAX_TOP_K]), in any order. NaN and +inf are rejected;
 * -inf is allowed (no evidence). */
TDM_API tdm_status tdm_logtoku(const float* alpha, uint32_t k, float* out_au, float* out_eu);

/* ------------------------------------------------------------------------------------------------
 * Sampling
 * ----------------------------------------------------------------------------------------------*/

typedef struct tdm_sampler tdm_sampler;

typedef struct tdm_sampler_options {
    uint32_t struct_size;
    float temperature;           /* 0 = greedy (argmax, lowest id on ties); default 1 */
    int32_t top_k;               /* keep the k most likely tokens; 0 = off */
    float top_p;                 /* keep the smallest set with mass >= top_p; 1 = off */
    uint64_t seed;               /* random seed; the same seed gives the same tokens */
    uint32_t stats_top_k;        /* K for the statistics reported with each token; default 2 */
} tdm_sampler_options;

TDM_API void tdm_sampler_options_init(tdm_sampler_options* options);

/* Fails with TDM_ERR_INVALID_ARGUMENT for a NaN, infinite or negative temperature, top_p outside
 * (0, 1], a negative top_k, or stats_top_k outside [1, TDM_MAX_TOP_K]. */
TDM_API tdm_status tdm_sampler_create(const tdm_sampler_options* options, tdm_sampler** out);

TDM_API void tdm_sampler_free(tdm_sampler* sampler);

/* Draws a token from a logit vector with the sampler's settings and advances its random state
 * (one uniform draw per sampled token; none when greedy). out_stats (optional) receives the
 * temperature-1 statistics of the same logits, with K = min(stats_top_k, vocab). The procedure is
 * specified exactly in native/src/decode/sampler.h, so other languages can reproduce it. */
TDM_API tdm_status tdm_sampler_sample(tdm_sampler* sampler, const float* logits, uint64_t vocab,
                                      int32_t* out_token, tdm_token_stats* out_stats);

/* The same on the session's last held logit row, without copying the logits out. */
TDM_API tdm_status tdm_sampler_sample_session(tdm_sampler* sampler, const tdm_session* session,
                                              int32_t* out_token, tdm_token_stats* out_stats);

/* ------------------------------------------------------------------------------------------------
 * Scoring
 * ----------------------------------------------------------------------------------------------*/

typedef struct tdm_score_entry {
    float logprob;               /* log p(token i | tokens before i); NaN where undefined */
    float entropy;               /* nats, of that same predictive distribution; NaN if undefined */
    float au;
    float eu;
} tdm_score_entry;

/* Appends the tokens to the session (as tdm_session_prefill with all_logits) and reports, for each
 * token i, the statistics of the distribution that predicted it. Token 0 is predicted by the
 * logits the session held before the call; when it held none (a fresh session) entry 0 is all NaN.
 * out has room for n_tokens entries. top_k is the LogTokU K (2 by default in the facade). */
TDM_API tdm_status tdm_session_score(tdm_session* session, const int32_t* tokens,
                                     uint64_t n_tokens, uint32_t top_k, tdm_score_entry* out,
                                     const tdm_prefill_options* options);

/* ------------------------------------------------------------------------------------------------
 * Two-model decoding (ALGORITHMS.md sections 1.6, 2, 6, 7)
 *
 * A pair holds a small and a large model that share a tokenizer, one session (KV cache) for each,
 * and the committed token sequence. Each session is kept in step lazily: before a model runs it
 * prefills the tokens committed since it last ran (catch-up), and tokens it wrote that were not
 * committed are rolled back (truncate). A pair is single-threaded, like a session.
 * ----------------------------------------------------------------------------------------------*/

typedef struct tdm_pair tdm_pair;

/* Which model of a pair. */
typedef enum tdm_pair_model {
    TDM_PAIR_SMALL = 0,
    TDM_PAIR_LARGE = 1
} tdm_pair_model;

typedef enum tdm_pair_mode {
    TDM_MODE_LARGE = 0,          /* the large model alone */
    TDM_MODE_SMALL = 1,          /* the small model alone */
    TDM_MODE_SPECULATIVE = 2,    /* small drafts, large verifies: lossless (output distributed as large) */
    TDM_MODE_RSTITCH = 3,        /* small writes; uncertain tokens are discarded and rewritten by large */
    TDM_MODE_EAD = 4             /* windowed-entropy switching between the models */
} tdm_pair_mode;

/* The uncertainty signal a built-in routing rule compares with its threshold. */
typedef enum tdm_route_signal {
    TDM_SIGNAL_ENTROPY_NORMALIZED = 0, /* H / ln V in [0, 1]; uncertain when above the threshold */
    TDM_SIGNAL_MAX_PROB = 1,           /* max probability; uncertain when BELOW the threshold */
    TDM_SIGNAL_EU = 2,                 /* LogTokU epistemic uncertainty; uncertain when above */
    TDM_SIGNAL_ENTROPY_BITS = 3        /* H / ln 2; uncertain when above (EAD's unit) */
} tdm_route_signal;

/* A built-in routing rule for R-Stitch and EAD, so native code needs no callback. */
typedef struct tdm_route_policy {
    uint32_t struct_size;
    int32_t signal;              /* tdm_route_signal; default NORMALIZED for R-Stitch (EAD always uses bits) */
    float threshold;             /* default 0.3 (R-Stitch, normalized entropy) or 1.5 (EAD, bits);
                                    +inf never routes to the large model, -inf always does (for
                                    MAX_PROB the other way round). EAD at -inf without
                                    regenerate_on_switch still commits the small model's first token */
    uint32_t window;             /* EAD rolling window w in tokens; default 5 */
    uint32_t min_large_tokens;   /* EAD: tokens the large model writes before it may hand back; default 1 */
    uint8_t regenerate_on_switch;/* EAD: the large model rewrites the token that triggered the switch; default 0 */
    uint32_t handback_after;     /* R-Stitch: consecutive confident large tokens before handing back; default 1 */
    uint32_t max_large_span;     /* R-Stitch: hand back after this many large tokens regardless; 0 = never (default) */
} tdm_route_policy;

TDM_API void tdm_route_policy_init(tdm_route_policy* policy, int32_t mode);

/* What a routing callback sees: the proposal of the active model for the next position. */
typedef struct tdm_route_info {
    uint32_t struct_size;
    int32_t active;              /* tdm_pair_model that proposed the token */
    int32_t token;               /* the proposed token */
    uint64_t position;           /* its index in the committed sequence (prompt included) */
    uint32_t tokens_since_switch;/* tokens the active model has committed since it became active */
    float window_mean_bits;      /* EAD rolling mean of the active model's entropy in bits, this step included */
    tdm_token_stats stats;       /* temperature-1 statistics of the active model's distribution */
} tdm_route_info;

typedef enum tdm_route_decision {
    TDM_ROUTE_KEEP = 0,          /* commit the token; the same model writes the next one */
    TDM_ROUTE_KEEP_AND_SWITCH = 1, /* commit the token; the other model writes the next one */
    TDM_ROUTE_DISCARD_AND_SWITCH = 2 /* drop the token; the other model writes this position */
} tdm_route_decision;

/* A routing policy as a callback: called once per decision (R-Stitch and EAD modes), on the calling
 * thread, before tdm_pair_step returns. Returns a tdm_route_decision; any other value (e.g. -1 after
 * the caller caught an error) stops the step with TDM_ERR_CALLBACK and leaves the pair as it was
 * before that decision. Must not unwind. */
typedef int32_t (*tdm_route_fn)(const tdm_route_info* info, void* user_data);

typedef struct tdm_pair_options {
    uint32_t struct_size;
    int32_t mode;                /* tdm_pair_mode; default TDM_MODE_RSTITCH */
    /* sampling, applied identically to both models (ALGORITHMS.md 2: required for losslessness) */
    float temperature;           /* 0 = greedy (default); otherwise sampled */
    int32_t top_k;               /* 0 = off */
    float top_p;                 /* 1 = off */
    uint64_t seed;               /* one seed for sampling and acceptance draws */
    uint32_t stats_top_k;        /* K for the per-token statistics (LogTokU); default 2 */
    uint32_t max_new_tokens;     /* stop after this many committed tokens; 0 = until the context is full */
    uint8_t stop_at_eos;         /* stop after the model's end-of-sequence token; default 1 */
    /* speculative decoding */
    uint32_t draft_length;       /* gamma: drafts per verification; default 4 */
    uint8_t adaptive_draft;      /* gamma + 1 after a fully accepted draft (up to 4 x draft_length, at most
                                    256), gamma - 1 after a rejection in the draft's first half; default 0 */
    float draft_confidence;      /* end the draft after a token whose max prob (temperature 1) is below
                                    this (that token is still verified); 0 = off */
    /* routing for R-Stitch and EAD: a built-in policy, or a callback that overrides it */
    const tdm_route_policy* policy; /* NULL = tdm_route_policy_init defaults for the mode; copied at start */
    tdm_route_fn route;          /* optional */
    void* route_user_data;
    tdm_abort_fn abort;          /* optional, checked between forward passes */
    void* abort_user_data;
} tdm_pair_options;

TDM_API void tdm_pair_options_init(tdm_pair_options* options);

/* What happened to a token. Records of every proposal are returned, the rejected ones included. */
typedef enum tdm_token_outcome {
    TDM_OUTCOME_WRITTEN = 0,     /* committed, written by a single model (small/large/R-Stitch/EAD; or
                                    speculative when max_new_tokens or the context leaves room for one) */
    TDM_OUTCOME_ACCEPTED = 1,    /* speculative: a draft token the large model accepted (committed) */
    TDM_OUTCOME_REJECTED = 2,    /* speculative: a draft token the large model rejected (not committed) */
    TDM_OUTCOME_CORRECTED = 3,   /* speculative: the large model's token after a rejection (committed) */
    TDM_OUTCOME_BONUS = 4,       /* speculative: the large model's free token after a full accept (committed) */
    TDM_OUTCOME_DISCARDED = 5    /* routing: a proposal the policy dropped (not committed) */
} tdm_token_outcome;

typedef struct tdm_token_record {
    int32_t token;
    int32_t model;               /* tdm_pair_model that proposed or wrote it */
    int32_t outcome;             /* tdm_token_outcome */
    uint64_t position;           /* index in the sequence (prompt included) it was proposed for */
    float entropy;               /* nats, temperature 1, of the distribution that produced it */
    float entropy_normalized;    /* entropy / ln V */
    float max_prob;
    float au;                    /* LogTokU, K = stats_top_k */
    float eu;
} tdm_token_record;

typedef struct tdm_pair_stats {
    uint32_t struct_size;
    uint64_t tokens_small;       /* committed tokens written by each model */
    uint64_t tokens_large;
    uint64_t drafted;            /* speculative: draft tokens proposed */
    uint64_t accepted;           /* speculative: draft tokens accepted */
    uint64_t verifications;      /* speculative: large-model verification passes */
    double mean_accepted;        /* speculative: accepted drafts per verification */
    uint64_t discarded;          /* routing: proposals dropped */
    uint64_t switches;           /* routing: changes of the writing model */
    uint64_t forwards_small;     /* forward passes (prefill, catch-up, decode) run by each model */
    uint64_t forwards_large;
    double seconds_small;        /* wall time spent in each model's forward passes */
    double seconds_large;
    double seconds_total;        /* wall time of all steps since tdm_pair_start, prefill included */
} tdm_pair_stats;

/* Pairs two models. Fails with TDM_ERR_INVALID_MODEL, naming the first difference, when their
 * vocabulary sizes differ or when both folders hold a tokenizer.json and a token id maps to different
 * texts (or special tokens differ). The pair keeps both models alive. session_options (may be NULL)
 * apply to both sessions. */
TDM_API tdm_status tdm_pair_create(tdm_model* small, tdm_model* large,
                                   const tdm_session_options* session_options, tdm_pair** out_pair);

TDM_API void tdm_pair_free(tdm_pair* pair);

/* Starts a new generation: clears both caches, sets the committed sequence to the prompt and the
 * options (copied; options may be NULL for the defaults). The prompt is prefilled by the model(s) the
 * mode needs first. Fails with TDM_ERR_CONTEXT_FULL when the prompt does not fit. */
TDM_API tdm_status tdm_pair_start(tdm_pair* pair, const int32_t* prompt, uint64_t n_prompt,
                                  const tdm_pair_options* options);

/* Largest number of records one tdm_pair_step can return with the started options. */
TDM_API tdm_status tdm_pair_max_records(const tdm_pair* pair, uint64_t* out_count);

/* Runs one decision: one token for large/small/R-Stitch/EAD (plus any discarded proposal), or one
 * draft-and-verify round for speculative decoding. Writes the records in order into out (capacity at
 * least tdm_pair_max_records) and sets *out_finished once generation has stopped (EOS committed,
 * max_new_tokens reached, or the context is full); later steps then return no records. On failure
 * (including TDM_ERR_CANCELLED and TDM_ERR_CALLBACK) the pair is as it was before the step. */
TDM_API tdm_status tdm_pair_step(tdm_pair* pair, tdm_token_record* out, uint64_t capacity,
                                 uint64_t* out_count, uint8_t* out_finished);

/* Run statistics since tdm_pair_start. */
TDM_API tdm_status tdm_pair_get_stats(const tdm_pair* pair, tdm_pair_stats* out);

/* The committed sequence (prompt included): copies min(length, out_len) ids; *out_length = length. */
TDM_API tdm_status tdm_pair_tokens(const tdm_pair* pair, int32_t* out, uint64_t out_len,
                                   uint64_t* out_length);

/* Borrowed session of one model (valid while the pair lives; do not free it). For inspection, e.g.
 * checking that its cache length never exceeds the committed length. */
TDM_API tdm_status tdm_pair_session(tdm_pair* pair, int32_t which, tdm_session** out_session);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TANDEM_H */
