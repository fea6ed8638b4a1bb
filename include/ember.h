/*
 * ember.h — the C ABI of Ember, an on-device LLM inference engine, for device ports (JNI on
 * Android, Flutter/Dart FFI, React Native, game engines) and any other foreign caller.
 *
 * Link against libember.so (built by `make cabi`, installed with this header under
 * .build/ember-c/). Only the `ember_` functions below are exported.
 *
 * Conventions, for every function:
 *  - Every call returns an `ember_status`; EMBER_STATUS_OK is 0. On any other status,
 *    `ember_last_error()` gives a message for people, for the calling thread, until that thread's
 *    next call into Ember. Output parameters are written only on EMBER_STATUS_OK.
 *  - No call aborts the process on bad input: NULL handles and pointers, a wrong `struct_size`, a
 *    handle already closed (detected while its memory is Ember's), a missing or corrupt model file,
 *    a budget too small — each returns a status and a message.
 *  - Handles are opaque. Each is created by one function and released by one function; after it is
 *    released, passing it again returns EMBER_STATUS_INVALID_ARGUMENT.
 *  - Params structs begin with `struct_size`: fill them with the matching `…_default_params()`
 *    function (which sets `struct_size = sizeof(struct)`), then change the fields you need. A struct
 *    smaller than this library's first version, or larger than the version it knows (a caller
 *    built against a newer header), is refused with EMBER_STATUS_INVALID_ARGUMENT.
 *  - Strings are NUL-terminated UTF-8; invalid UTF-8 is refused. Sizes are in bytes, times in
 *    nanoseconds. Strings passed in are copied before the call returns.
 *  - Memory Ember hands out (search results, summaries) is released with `ember_free`. Strings
 *    inside callback arguments live only until the callback returns: copy what you keep.
 *  - Threads: every function may be called from any thread unless its comment says otherwise.
 *    Callbacks run on threads of Ember's, never the thread that registered them; keep them short.
 */
#ifndef EMBER_H
#define EMBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes; `ember_abi_version()` returns the library's. A library
 *  accepts callers built against the same major version (ABI version / 10000). */
#define EMBER_ABI_VERSION 10000

/* ---------------------------------------------------------------- status and errors */

typedef enum ember_status {
    EMBER_STATUS_OK = 0,
    /** A NULL or released handle, a NULL pointer, a wrong struct_size, a value out of range. */
    EMBER_STATUS_INVALID_ARGUMENT = 1,
    /** A model file, note or database that does not exist. */
    EMBER_STATUS_NOT_FOUND = 2,
    /** The file is not a model Ember runs (corrupt, truncated, unknown architecture or type, no chat template). */
    EMBER_STATUS_UNSUPPORTED_MODEL = 3,
    /** The model does not fit the memory budget in any plan the params allow; the message says what would. */
    EMBER_STATUS_MEMORY_BUDGET = 4,
    /** The message does not fit the context. */
    EMBER_STATUS_CONTEXT_FULL = 5,
    /** The request was cancelled (ember_request_cancel, the callback's return value, release). */
    EMBER_STATUS_CANCELLED = 6,
    /** A background request stopped by a critical memory warning. */
    EMBER_STATUS_MEMORY_PRESSURE = 7,
    /** Reading a file or descriptor failed. */
    EMBER_STATUS_IO = 8,
    /** The notes database failed (locked, corrupt, full). */
    EMBER_STATUS_DATABASE = 9,
    /** A failure inside Ember; the message says what. */
    EMBER_STATUS_INTERNAL = 10,
    /** ember_request_wait: the request is still running when the timeout expires. */
    EMBER_STATUS_TIMEOUT = 11,
    /** The chat is still answering its previous message (one request per chat at a time). */
    EMBER_STATUS_BUSY = 12
} ember_status;

/** The message of the calling thread's last failed call ("" before any failed). Owned by Ember,
 *  valid until the thread's next call into Ember; never NULL. A successful call leaves it as it was. */
const char *ember_last_error(void);

/** A constant name for `status` ("ok", "invalid_argument", …); never NULL. */
const char *ember_status_name(ember_status status);

/** EMBER_ABI_VERSION of the library. */
uint32_t ember_abi_version(void);

/** Releases memory Ember allocated and handed to the caller (search results, summaries).
 *  NULL is ignored. */
void ember_free(void *pointer);

/* ---------------------------------------------------------------- logging */

typedef enum ember_log_level {
    EMBER_LOG_DEBUG = 0,
    EMBER_LOG_INFO = 1,
    EMBER_LOG_WARNING = 2,
    EMBER_LOG_ERROR = 3
} ember_log_level;

/** Receives Ember's log lines (engine opened and its plan, requests finished, failures). Called on
 *  the thread that logs, possibly several at once: it must be thread-safe. `message` lives until
 *  it returns. */
typedef void (*ember_log_callback)(ember_log_level level, const char *message, void *user_data);

/** Sets the process-wide log callback and the lowest level passed to it (NULL: no logging, the
 *  default). A log line already being written when this is called may still reach the previous
 *  callback, so keep its user_data alive until the engines that used it are closed. */
ember_status ember_set_log_callback(ember_log_callback callback, ember_log_level minimum_level, void *user_data);

/* ---------------------------------------------------------------- engine */

typedef struct ember_engine ember_engine;

typedef enum ember_kv_type {
    /** f16, or with a budget the first of f16, q8_0, q4_0 that fits. */
    EMBER_KV_AUTO = 0,
    EMBER_KV_F16 = 1,
    EMBER_KV_Q8_0 = 2,
    EMBER_KV_Q4_0 = 3
} ember_kv_type;

typedef enum ember_weight_streaming {
    /** Weights always resident (fastest; the budget must hold them). */
    EMBER_WEIGHTS_RESIDENT = 0,
    /** Streamed from the file only when no resident plan fits. */
    EMBER_WEIGHTS_STREAM_IF_NEEDED = 1,
    /** Always streamed (smallest footprint, slower decoding; GGUF files only). */
    EMBER_WEIGHTS_STREAM_ALWAYS = 2
} ember_weight_streaming;

typedef struct ember_engine_params {
    size_t struct_size;
    /** A GGUF file or an `ember pack` container (.ggz), told apart by its first bytes. */
    const char *model_path;
    /** Instead of a path (model_path NULL): an open file (Android ParcelFileDescriptor.getFd()).
     *  It stays the caller's; Ember reads it with pread and maps it. -1: use model_path. */
    int32_t model_fd;
    /** The model's name in messages when opened from model_fd (may be NULL). */
    const char *model_name;
    /** Bytes the whole process may use (weights, KV cache, scratch, runtime); 0: no limit. */
    uint64_t memory_budget_bytes;
    /** Positions of the KV cache asked for (default 2048). */
    uint32_t context_length;
    /** Nonzero: a budget may choose a shorter context (down to 256) rather than refuse. */
    int32_t adjusts_context;
    /** Worker threads; 0: every active core. */
    uint32_t thread_count;
    ember_kv_type kv_type;
    ember_weight_streaming weight_streaming;
    /** Prompt tokens evaluated per step at most (a budget may choose smaller steps). */
    uint32_t batch_size;
    /** Prompt tokens between two cancellation checks. */
    uint32_t prefill_chunk;
    /** Nonzero (the default): pace replies from the platform state (fewer threads and gaps between
     *  tokens when hot, on battery saver or in the background). 0: every token as fast as possible. */
    int32_t paces_tokens;
} ember_engine_params;

/** Defaults: no model, no budget, context 2048 (adjustable), all cores, automatic KV type,
 *  resident weights, batch 512, chunk 128, paced. Sets struct_size. */
ember_engine_params ember_engine_default_params(void);

typedef struct ember_memory_plan {
    size_t struct_size; /* set by the caller: sizeof(ember_memory_plan) */
    uint64_t weights_bytes;
    uint64_t kv_cache_bytes;
    uint64_t scratch_bytes;
    /** Runtime and other fixed costs. */
    uint64_t overhead_bytes;
    uint64_t total_bytes;
    uint32_t context_length;
    uint32_t batch_size;
    ember_kv_type kv_type;
    int32_t streams_weights;
} ember_memory_plan;

/** The memory plan for `params` without loading the model (the file is opened, a container
 *  decoded, to be measured): it fits, perhaps with a shorter context, quantized KV cache or
 *  smaller steps, or EMBER_STATUS_MEMORY_BUDGET and a message that says what would fit.
 *  `out_plan->struct_size` must be set. Blocks while the file is read. */
ember_status ember_plan(const ember_engine_params *params, ember_memory_plan *out_plan);

/** Plans as ember_plan does, then loads the model as planned into a new engine.
 *  Blocks while the model loads (do not call it on a UI thread). On success `*out_engine` is
 *  the caller's until ember_engine_close. */
ember_status ember_engine_open(const ember_engine_params *params, ember_engine **out_engine);

/** The plan `engine` was loaded with. `out_plan->struct_size` must be set. */
ember_status ember_engine_get_plan(ember_engine *engine, ember_memory_plan *out_plan);

/** Releases the caller's engine handle and stops its hint callback. Chats and requests still open
 *  keep the model alive until they are released too (memory is returned when the last goes);
 *  summaries still running are cancelled. */
ember_status ember_engine_close(ember_engine *engine);

/** Thermal and power state, as the platform reports it (see docs/EMBEDDING.md for the Android and
 *  iOS calls that produce each field). */
typedef struct ember_platform_state {
    size_t struct_size;
    /** Android PowerManager.THERMAL_STATUS_* (NONE 0, LIGHT 1, MODERATE 2, SEVERE 3, CRITICAL 4,
     *  EMERGENCY 5, SHUTDOWN 6). iOS: ember_thermal_status_from_ios(ProcessInfo.thermalState). */
    int32_t thermal_status;
    /** PowerManager.getThermalHeadroom(0): 0 cool, 1.0 at SEVERE. NaN: unknown (estimated from status). */
    double thermal_headroom;
    /** getThermalHeadroom(forecast seconds) ahead. NaN: the headroom now. */
    double thermal_headroom_forecast;
    /** Battery level 0…100 (BatteryManager.BATTERY_PROPERTY_CAPACITY). NaN: unknown (taken as full). */
    double battery_percent;
    int32_t is_charging;
    /** Android battery saver (PowerManager.isPowerSaveMode), iOS Low Power Mode. */
    int32_t is_power_save_mode;
    /** The app is in the foreground with the screen on (PowerManager.isInteractive). */
    int32_t is_foreground;
} ember_platform_state;

/** A cool phone on the charger in the foreground. Sets struct_size. */
ember_platform_state ember_platform_default_state(void);

/** iOS ProcessInfo.ThermalState raw value (0 nominal … 3 critical) on Android's scale. */
int32_t ember_thermal_status_from_ios(int32_t ios_thermal_state);

/** Stores the platform's latest state; the next prompt chunk or token is paced by it. Any thread
 *  (a PowerManager listener, a broadcast receiver); does not block on generation. */
ember_status ember_engine_update_platform(ember_engine *engine, const ember_platform_state *state);

typedef enum ember_memory_pressure {
    EMBER_MEMORY_PRESSURE_NONE = 0,
    /** onTrimMemory(TRIM_MEMORY_UI_HIDDEN / BACKGROUND); iOS entering the background. */
    EMBER_MEMORY_PRESSURE_MODERATE = 1,
    /** onTrimMemory(TRIM_MEMORY_RUNNING_CRITICAL); iOS didReceiveMemoryWarning. */
    EMBER_MEMORY_PRESSURE_CRITICAL = 2
} ember_memory_pressure;

/** Answers a platform memory warning: the conversation kept in the KV cache is forgotten once the
 *  request in flight ends (the next one evaluates its history again). Any thread; does not block. */
ember_status ember_engine_memory_pressure(ember_engine *engine, ember_memory_pressure level);

typedef enum ember_hint_kind {
    /** No hint: let the governor follow utilisation (report actual durations only). */
    EMBER_HINT_NONE = 0,
    /** Top clocks at once: PerformanceHintManager.Session with a short target, or QoS user-interactive. */
    EMBER_HINT_BOOST = 1,
    /** Session.updateTargetWorkDuration(target_duration_ns): the lowest clocks that finish the step in time. */
    EMBER_HINT_TARGET_DURATION = 2
} ember_hint_kind;

typedef struct ember_hint {
    size_t struct_size;
    ember_hint_kind kind;
    /** EMBER_HINT_TARGET_DURATION: the step's target; 0 otherwise. */
    uint64_t target_duration_ns;
    /** Linux thread ids (gettid) of the engine's generating threads, for
     *  PerformanceHintManager.createHintSession(tids, …); empty where unknown (non-Linux). */
    const int32_t *thread_ids;
    size_t thread_count;
} ember_hint;

/** Receives the performance hints the pacing policy picks, each time the hint changes (a boost for
 *  the first prompt, target durations for later prompt chunks, none for paced tokens). Called on
 *  one Ember thread per engine, one call at a time; `hint` lives until it returns. */
typedef void (*ember_hint_callback)(const ember_hint *hint, void *user_data);

/** Sets `engine`'s hint callback (NULL: none). After it returns, the previous callback is no
 *  longer called. Must not be called from inside the hint callback. */
ember_status ember_engine_set_hint_callback(ember_engine *engine, ember_hint_callback callback, void *user_data);

/* ---------------------------------------------------------------- chats and requests */

typedef struct ember_chat ember_chat;
typedef struct ember_request ember_request;

typedef struct ember_chat_params {
    size_t struct_size;
    /** The system message (may be NULL). */
    const char *instructions;
    /** Longest reply in tokens (default 256). */
    uint32_t max_tokens;
    /** 0: greedy. Default 0.8. */
    float temperature;
    /** 0: all tokens. Default 40. */
    uint32_t top_k;
    /** 1: off. Default 0.95. */
    float top_p;
    /** 0: off. Default 0.05. */
    float min_p;
    /** 1: off (the default). */
    float repetition_penalty;
    uint64_t seed;
    /** Nonzero (the default): each turn starts from what the KV cache holds of the conversation. */
    int32_t reuses_cache;
    /** A JSON Schema (UTF-8 text) every reply must be a document of (docs/STRUCTURED_OUTPUT.md), or
     *  NULL (the default) for free text. Copied by ember_chat_create, which fails with
     *  EMBER_STATUS_INVALID_ARGUMENT naming an unsupported feature. Added after the first version:
     *  a struct_size that ends before this field is still accepted (the field is then NULL). */
    const char *json_schema;
} ember_chat_params;

/** Defaults as listed above. Sets struct_size. */
ember_chat_params ember_chat_default_params(void);

/** A conversation with `engine`'s model (which must have a chat template). The chat keeps the
 *  engine alive; `*out_chat` is the caller's until ember_chat_destroy. */
ember_status ember_chat_create(ember_engine *engine, const ember_chat_params *params, ember_chat **out_chat);

/** Releases the chat. A request in flight continues (it holds the chat) until it ends or is released. */
ember_status ember_chat_destroy(ember_chat *chat);

typedef enum ember_request_class {
    /** Someone waits for the reply: paced for reading, never deferred. */
    EMBER_REQUEST_INTERACTIVE = 0,
    /** Background work (summaries, indexing): may be deferred until the phone is cool or charging,
     *  within deadline_ns. */
    EMBER_REQUEST_BACKGROUND = 1
} ember_request_class;

typedef enum ember_event_kind {
    /** The prompt is in the KV cache: prompt_tokens evaluated in prompt_duration_ns. */
    EMBER_EVENT_PROMPT_DONE = 1,
    /** One token: token_id and the text it completes (text_length bytes; may be empty while a
     *  UTF-8 sequence is incomplete; token_id -1 carries text held back until the end). */
    EMBER_EVENT_TOKEN = 2,
    /** Pacing holds the request for paced_duration_ns before its next step, for pace_reason. */
    EMBER_EVENT_PACED = 3,
    /** The last event of a completed request: stop_reason and statistics. */
    EMBER_EVENT_FINISHED = 4,
    /** The last event of a failed or cancelled request: status and message. */
    EMBER_EVENT_ERROR = 5
} ember_event_kind;

typedef enum ember_stop_reason {
    EMBER_STOP_END_OF_GENERATION = 0,
    EMBER_STOP_MAX_TOKENS = 1,
    EMBER_STOP_CONTEXT_FULL = 2
} ember_stop_reason;

typedef enum ember_pace_reason {
    /** A gap between tokens: the reply is fast enough already, lower clocks cost less per token. */
    EMBER_PACE_READING_SPEED = 0,
    /** Even interactive work pauses: the phone is about to reach SEVERE. */
    EMBER_PACE_THERMAL_PAUSE = 1,
    /** Background work waits for the phone to cool. */
    EMBER_PACE_THERMAL_DEFERRAL = 2,
    /** Background work waits for the charger (battery low or battery saver). */
    EMBER_PACE_BATTERY_DEFERRAL = 3
} ember_pace_reason;

typedef struct ember_statistics {
    /** Tokens of the whole conversation as rendered; evaluated: those not reused from the cache. */
    uint32_t prompt_tokens;
    uint32_t evaluated_prompt_tokens;
    uint32_t generated_tokens;
    uint64_t time_to_first_token_ns;
    double prefill_tokens_per_second;
    /** Tokens after the first, per second between the first and the last. */
    double decode_tokens_per_second;
    uint64_t peak_resident_bytes;
} ember_statistics;

typedef struct ember_event {
    size_t struct_size;
    ember_event_kind kind;
    /** The request the event belongs to (do not release it inside the callback). */
    ember_request *request;
    /* EMBER_EVENT_PROMPT_DONE */
    uint32_t prompt_tokens;
    uint64_t prompt_duration_ns;
    /* EMBER_EVENT_TOKEN */
    int32_t token_id;
    const char *text;
    size_t text_length;
    /* EMBER_EVENT_PACED */
    uint64_t paced_duration_ns;
    ember_pace_reason pace_reason;
    /* EMBER_EVENT_FINISHED */
    ember_stop_reason stop_reason;
    ember_statistics statistics;
    /* EMBER_EVENT_ERROR */
    ember_status status;
    const char *message;
} ember_event;

/** Called for each event of a request, in order, one at a time, on an Ember thread; `event` and
 *  its strings live until it returns. Return 0 to continue, nonzero to cancel the request (it then
 *  ends with an EMBER_EVENT_ERROR of status EMBER_STATUS_CANCELLED). The callback must not call
 *  ember_request_wait or ember_request_release on its own request. */
typedef int32_t (*ember_event_callback)(const ember_event *event, void *user_data);

typedef struct ember_request_params {
    size_t struct_size;
    ember_request_class request_class;
    /** Background requests: nanoseconds from now by which the request must be done; 0: none. */
    uint64_t deadline_ns;
    /** May be NULL (then only ember_request_wait tells the outcome). */
    ember_event_callback on_event;
    void *user_data;
} ember_request_params;

/** Interactive, no deadline, no callback. Sets struct_size. */
ember_request_params ember_request_default_params(void);

/** Sends `message` as the user's next turn and returns at once; the reply is generated on Ember's
 *  thread and delivered to params->on_event. One request per chat at a time (EMBER_STATUS_BUSY);
 *  requests of several chats of one engine run one after another. The exchange joins the chat's
 *  history when the reply completes; a cancelled request leaves no trace. `*out_request` is the
 *  caller's until ember_request_release. */
ember_status ember_chat_send(ember_chat *chat, const char *message, const ember_request_params *params,
                             ember_request **out_request);

/** Asks the request to stop: the prompt stops within one chunk, generation before the next token.
 *  Returns at once; the request ends with EMBER_STATUS_CANCELLED unless it had already ended.
 *  May be called from any thread, including the request's own callback. */
ember_status ember_request_cancel(ember_request *request);

/** Waits up to timeout_ns (UINT64_MAX: forever) for the request to end, after its last callback
 *  returned. Returns the request's outcome: EMBER_STATUS_OK when it finished, or the status of its
 *  error event (EMBER_STATUS_CANCELLED, …), or EMBER_STATUS_TIMEOUT if it is still running.
 *  On EMBER_STATUS_OK, `out_statistics` (may be NULL) receives the statistics. */
ember_status ember_request_wait(ember_request *request, uint64_t timeout_ns, ember_statistics *out_statistics);

/** Releases the request handle. A request still running is cancelled first, and this returns once
 *  its callback will not be called again (so user_data may be freed). Not from its own callback. */
ember_status ember_request_release(ember_request *request);

/* ---------------------------------------------------------------- notes */

typedef struct ember_notes ember_notes;

typedef struct ember_notes_params {
    size_t struct_size;
    /** The SQLite database file. */
    const char *path;
    /** Nonzero (the default): create the database when missing; 0: EMBER_STATUS_NOT_FOUND. */
    int32_t create_if_missing;
} ember_notes_params;

/** Defaults: no path, created if missing. Sets struct_size. */
ember_notes_params ember_notes_default_params(void);

/** Opens (and migrates) the notes database. `*out_notes` is the caller's until ember_notes_close. */
ember_status ember_notes_open(const ember_notes_params *params, ember_notes **out_notes);

/** Adds a note; `tags` is a comma-separated list (may be NULL). `*out_note_id` receives its id. */
ember_status ember_notes_add(ember_notes *notes, const char *title, const char *body, const char *tags,
                             int64_t *out_note_id);

/** Full-text search (SQLite FTS5; words, "phrases", prefix*). `*out_json` receives a JSON array,
 *  best first, of {"id", "title", "snippet", "score"} objects, at most `limit` (1…1000); release it
 *  with ember_free. */
ember_status ember_notes_search(ember_notes *notes, const char *query, uint32_t limit, char **out_json);

/** A note as JSON {"id", "title", "body", "tags", "summary"} ("summary": the latest stored summary
 *  or null). Release `*out_json` with ember_free. */
ember_status ember_notes_get(ember_notes *notes, int64_t note_id, char **out_json);

/** Summarizes note `note_id` with `engine`'s model, as background work paced by the engine's
 *  platform state (class and deadline from `params`; a long note is summarized in parts, then the
 *  parts' summaries combined). Returns at once. Events: one TOKEN (token_id -1) with the whole
 *  summary once it is stored with the note, then FINISHED (prompt and generated token counts); or
 *  ERROR. The summaries of an engine run one at a time on a scheduler of their own, made at the
 *  first summary: its KV cache and threads come on top of the engine's plan. Closing the engine
 *  cancels summaries still waiting. `*out_request` is the caller's until ember_request_release. */
ember_status ember_notes_summarize(ember_notes *notes, ember_engine *engine, int64_t note_id,
                                   const ember_request_params *params, ember_request **out_request);

/** Closes the notes handle (a summary in flight keeps the database open until it ends). */
ember_status ember_notes_close(ember_notes *notes);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
