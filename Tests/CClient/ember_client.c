/*
 * A foreign client of libember.so, in C against include/ember.h only, as a JNI shim or any other
 * port would use it. `make cabi-test` runs it (also under AddressSanitizer and UBSan):
 *
 *   ember_client test   MODEL           error paths, a streamed reply in a budget, a cancelled
 *                                       request, thermal pacing, hints, logs, notes
 *   ember_client greedy MODEL TOKENS P  the greedy token ids of the chat reply to P
 *   ember_client cycles MODEL OPENS REQUESTS
 *                                       RSS before and after OPENS engine open/close cycles and
 *                                       REQUESTS chat requests created and released
 *   ember_client bench  MODEL THREADS TOKENS REPETITIONS
 *                                       decode tokens/s of unpaced replies
 *
 * Exit status 0 when every check passed; each failed check prints one line.
 */
#define _GNU_SOURCE
#include "ember.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1 /* ASan's shadow memory and quarantine count in the RSS: no budget check */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static int failures = 0;
static int checks = 0;

#define CHECK(condition, ...)                                                        \
    do {                                                                             \
        checks++;                                                                    \
        if (!(condition)) {                                                          \
            failures++;                                                              \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
            fprintf(stderr, __VA_ARGS__);                                            \
            fprintf(stderr, "\n");                                                   \
        }                                                                            \
    } while (0)

/* A call that must fail with `expected` and leave a message. */
#define EXPECT_STATUS(call, expected, what)                                                          \
    do {                                                                                             \
        ember_status status_ = (call);                                                               \
        const char *message_ = ember_last_error();                                                   \
        CHECK(status_ == (expected), "%s: got %s, expected %s (%s)", what, ember_status_name(status_), \
              ember_status_name(expected), message_);                                                \
        if ((expected) != EMBER_STATUS_OK) {                                                         \
            CHECK(message_ != NULL && message_[0] != '\0', "%s: no message", what);                  \
            printf("  error path: %-42s -> %-17s %s\n", what, ember_status_name(status_), message_); \
        }                                                                                            \
    } while (0)

#define REQUIRE_OK(call, what)                                                                        \
    do {                                                                                              \
        ember_status status_ = (call);                                                                \
        if (status_ != EMBER_STATUS_OK) {                                                             \
            fprintf(stderr, "FAIL %s: %s (%s)\n", what, ember_status_name(status_), ember_last_error()); \
            exit(1);                                                                                  \
        }                                                                                             \
    } while (0)

static double now_seconds(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

static void sleep_seconds(double seconds) {
    struct timespec time = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&time, NULL);
}

/* RSS after glibc has returned its free heap pages to the system (malloc_trim), so the figure is
 * live memory rather than what the allocator keeps for reuse. */
static long settled_resident_kib(void);

static long resident_kib(void) {
    FILE *file = fopen("/proc/self/status", "r");
    if (!file) return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, file)) {
        if (strncmp(line, "VmRSS:", 6) == 0) { kib = strtol(line + 6, NULL, 10); break; }
    }
    fclose(file);
    return kib;
}

static int thread_count(void) {
    FILE *file = fopen("/proc/self/status", "r");
    if (!file) return -1;
    char line[256];
    int threads = -1;
    while (fgets(line, sizeof line, file)) {
        if (strncmp(line, "Threads:", 8) == 0) { threads = (int)strtol(line + 8, NULL, 10); break; }
    }
    fclose(file);
    return threads;
}

static long settled_resident_kib(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    return resident_kib();
}

/* ------------------------------------------------------------ what a request's callback sees */

typedef struct {
    pthread_mutex_t lock;
    int prompt_done;
    int tokens;
    int paced;
    int paced_thermal;
    int finished;
    int errors;
    ember_status error_status;
    int cancel_after_tokens; /* > 0: return nonzero at this token */
    int32_t ids[4096];
    int id_count;
    char text[16384];
    size_t text_length;
    int print;
    ember_statistics statistics;
} events;

static void events_init(events *state) {
    memset(state, 0, sizeof *state);
    pthread_mutex_init(&state->lock, NULL);
}

static int32_t on_event(const ember_event *event, void *user_data) {
    events *state = user_data;
    int32_t result = 0;
    pthread_mutex_lock(&state->lock);
    switch (event->kind) {
    case EMBER_EVENT_PROMPT_DONE: state->prompt_done++; break;
    case EMBER_EVENT_TOKEN:
        state->tokens++;
        if (event->token_id >= 0 && state->id_count < 4096) state->ids[state->id_count++] = event->token_id;
        if (state->text_length + event->text_length < sizeof state->text) {
            memcpy(state->text + state->text_length, event->text, event->text_length);
            state->text_length += event->text_length;
            state->text[state->text_length] = '\0';
        }
        if (state->print) { fwrite(event->text, 1, event->text_length, stdout); fflush(stdout); }
        if (state->cancel_after_tokens > 0 && state->tokens >= state->cancel_after_tokens) result = 1;
        break;
    case EMBER_EVENT_PACED:
        state->paced++;
        if (event->pace_reason == EMBER_PACE_THERMAL_PAUSE) state->paced_thermal++;
        break;
    case EMBER_EVENT_FINISHED:
        state->finished++;
        state->statistics = event->statistics;
        break;
    case EMBER_EVENT_ERROR:
        state->errors++;
        state->error_status = event->status;
        break;
    }
    pthread_mutex_unlock(&state->lock);
    return result;
}

static int events_get(events *state, int *field) {
    pthread_mutex_lock(&state->lock);
    int value = *field;
    pthread_mutex_unlock(&state->lock);
    return value;
}

/* ------------------------------------------------------------ hints and logs */

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static int hint_count, hint_boosts, hint_targets, hint_threads, log_lines;

static void on_hint(const ember_hint *hint, void *user_data) {
    (void)user_data;
    pthread_mutex_lock(&counter_lock);
    hint_count++;
    if (hint->kind == EMBER_HINT_BOOST) hint_boosts++;
    if (hint->kind == EMBER_HINT_TARGET_DURATION && hint->target_duration_ns > 0) hint_targets++;
    hint_threads = (int)hint->thread_count;
    pthread_mutex_unlock(&counter_lock);
}

static void on_log(ember_log_level level, const char *message, void *user_data) {
    (void)level;
    (void)message;
    (void)user_data;
    pthread_mutex_lock(&counter_lock);
    log_lines++;
    pthread_mutex_unlock(&counter_lock);
}

/* ------------------------------------------------------------ helpers */

static ember_engine *open_engine(const char *model, uint64_t budget, uint32_t threads, int paced) {
    ember_engine_params params = ember_engine_default_params();
    params.model_path = model;
    params.memory_budget_bytes = budget;
    params.thread_count = threads;
    params.paces_tokens = paced;
    ember_engine *engine = NULL;
    REQUIRE_OK(ember_engine_open(&params, &engine), "open the engine");
    return engine;
}

static ember_chat *greedy_chat(ember_engine *engine, uint32_t max_tokens) {
    ember_chat_params params = ember_chat_default_params();
    params.temperature = 0;
    params.max_tokens = max_tokens;
    ember_chat *chat = NULL;
    REQUIRE_OK(ember_chat_create(engine, &params, &chat), "create a chat");
    return chat;
}

/* Sends `message`, waits for the reply; the request's outcome. */
static ember_status send_and_wait(ember_chat *chat, const char *message, events *state, ember_statistics *statistics) {
    ember_request_params params = ember_request_default_params();
    params.on_event = on_event;
    params.user_data = state;
    ember_request *request = NULL;
    ember_status status = ember_chat_send(chat, message, &params, &request);
    if (status != EMBER_STATUS_OK) return status;
    status = ember_request_wait(request, UINT64_MAX, statistics);
    REQUIRE_OK(ember_request_release(request), "release a request");
    return status;
}

static void write_file(const char *path, const void *bytes, size_t count) {
    FILE *file = fopen(path, "wb");
    if (!file || fwrite(bytes, 1, count, file) != count) { perror(path); exit(1); }
    fclose(file);
}

/* ------------------------------------------------------------ test: error paths */

static void test_error_paths(const char *model, const char *directory) {
    printf("error paths\n");
    ember_engine_params params = ember_engine_default_params();
    ember_engine *engine = (ember_engine *)0x1;
    EXPECT_STATUS(ember_engine_open(NULL, &engine), EMBER_STATUS_INVALID_ARGUMENT, "open: NULL params");
    params.model_path = model;
    EXPECT_STATUS(ember_engine_open(&params, NULL), EMBER_STATUS_INVALID_ARGUMENT, "open: NULL out_engine");
    CHECK(engine == (ember_engine *)0x1, "a failed open wrote its output");

    ember_engine_params wrong = params;
    wrong.struct_size = 0;
    EXPECT_STATUS(ember_engine_open(&wrong, &engine), EMBER_STATUS_INVALID_ARGUMENT, "open: struct_size 0");
    wrong.struct_size = sizeof wrong + 8;
    EXPECT_STATUS(ember_engine_open(&wrong, &engine), EMBER_STATUS_INVALID_ARGUMENT, "open: struct_size of a newer header");

    char missing[512];
    snprintf(missing, sizeof missing, "%s/no-such-model.gguf", directory);
    wrong = params;
    wrong.model_path = missing;
    EXPECT_STATUS(ember_engine_open(&wrong, &engine), EMBER_STATUS_NOT_FOUND, "open: missing model file");
    wrong.model_path = NULL;
    EXPECT_STATUS(ember_engine_open(&wrong, &engine), EMBER_STATUS_INVALID_ARGUMENT, "open: no path, no fd");
    wrong.model_fd = 987654;
    EXPECT_STATUS(ember_engine_open(&wrong, &engine), EMBER_STATUS_IO, "open: a closed file descriptor");

    char corrupt[512];
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.gguf", directory);
    unsigned char bytes[4096];
    memcpy(bytes, "GGUF", 4);
    for (size_t index = 4; index < sizeof bytes; index++) bytes[index] = (unsigned char)(index * 7919u >> 3);
    write_file(corrupt, bytes, sizeof bytes);
    wrong.model_fd = -1;
    wrong.model_path = corrupt;
    EXPECT_STATUS(ember_engine_open(&wrong, &engine), EMBER_STATUS_UNSUPPORTED_MODEL, "open: corrupt GGUF");

    /* The real model cut after 256 KiB: a valid header whose tensors are missing. */
    char truncated[512];
    snprintf(truncated, sizeof truncated, "%s/truncated.gguf", directory);
    {
        FILE *source = fopen(model, "rb");
        if (!source) { perror(model); exit(1); }
        static unsigned char head[256 * 1024];
        size_t count = fread(head, 1, sizeof head, source);
        fclose(source);
        write_file(truncated, head, count);
    }
    wrong.model_path = truncated;
    EXPECT_STATUS(ember_engine_open(&wrong, &engine), EMBER_STATUS_UNSUPPORTED_MODEL, "open: truncated GGUF");

    char text_file[512];
    snprintf(text_file, sizeof text_file, "%s/notes.txt", directory);
    write_file(text_file, "hello, not a model\n", 19);
    wrong.model_path = text_file;
    EXPECT_STATUS(ember_engine_open(&wrong, &engine), EMBER_STATUS_UNSUPPORTED_MODEL, "open: a text file");

    wrong = params;
    wrong.memory_budget_bytes = 8u << 20;
    EXPECT_STATUS(ember_engine_open(&wrong, &engine), EMBER_STATUS_MEMORY_BUDGET, "open: budget of 8 MiB");
    ember_memory_plan plan = {.struct_size = sizeof plan};
    EXPECT_STATUS(ember_plan(&wrong, &plan), EMBER_STATUS_MEMORY_BUDGET, "plan: budget of 8 MiB");
    wrong.memory_budget_bytes = 0;
    wrong.context_length = 3;
    EXPECT_STATUS(ember_plan(&wrong, &plan), EMBER_STATUS_INVALID_ARGUMENT, "plan: context of 3 tokens");
    wrong.context_length = 2048;
    wrong.kv_type = (ember_kv_type)42;
    EXPECT_STATUS(ember_plan(&wrong, &plan), EMBER_STATUS_INVALID_ARGUMENT, "plan: kv_type 42");
    wrong.kv_type = EMBER_KV_AUTO;
    plan.struct_size = 3;
    EXPECT_STATUS(ember_plan(&wrong, &plan), EMBER_STATUS_INVALID_ARGUMENT, "plan: out_plan struct_size 3");
    EXPECT_STATUS(ember_plan(&wrong, NULL), EMBER_STATUS_INVALID_ARGUMENT, "plan: NULL out_plan");

    /* NULL, forged and released handles. */
    ember_platform_state state = ember_platform_default_state();
    ember_chat_params chat_params = ember_chat_default_params();
    ember_request_params request_params = ember_request_default_params();
    ember_chat *chat = NULL;
    ember_request *request = NULL;
    EXPECT_STATUS(ember_engine_close(NULL), EMBER_STATUS_INVALID_ARGUMENT, "close: NULL engine");
    EXPECT_STATUS(ember_engine_close((ember_engine *)(uintptr_t)0xdead0), EMBER_STATUS_INVALID_ARGUMENT, "close: forged engine");
    EXPECT_STATUS(ember_engine_update_platform(NULL, &state), EMBER_STATUS_INVALID_ARGUMENT, "update_platform: NULL engine");
    EXPECT_STATUS(ember_engine_memory_pressure(NULL, EMBER_MEMORY_PRESSURE_CRITICAL), EMBER_STATUS_INVALID_ARGUMENT,
                  "memory_pressure: NULL engine");
    EXPECT_STATUS(ember_engine_set_hint_callback(NULL, on_hint, NULL), EMBER_STATUS_INVALID_ARGUMENT, "set_hint_callback: NULL engine");
    EXPECT_STATUS(ember_chat_create(NULL, &chat_params, &chat), EMBER_STATUS_INVALID_ARGUMENT, "chat_create: NULL engine");
    EXPECT_STATUS(ember_chat_destroy(NULL), EMBER_STATUS_INVALID_ARGUMENT, "chat_destroy: NULL chat");
    EXPECT_STATUS(ember_chat_send(NULL, "hi", &request_params, &request), EMBER_STATUS_INVALID_ARGUMENT, "chat_send: NULL chat");
    EXPECT_STATUS(ember_request_cancel(NULL), EMBER_STATUS_INVALID_ARGUMENT, "request_cancel: NULL request");
    EXPECT_STATUS(ember_request_wait(NULL, 0, NULL), EMBER_STATUS_INVALID_ARGUMENT, "request_wait: NULL request");
    EXPECT_STATUS(ember_request_release(NULL), EMBER_STATUS_INVALID_ARGUMENT, "request_release: NULL request");
    EXPECT_STATUS(ember_notes_add(NULL, "t", "b", NULL, NULL), EMBER_STATUS_INVALID_ARGUMENT, "notes_add: NULL notes");
    EXPECT_STATUS(ember_notes_close(NULL), EMBER_STATUS_INVALID_ARGUMENT, "notes_close: NULL notes");
    EXPECT_STATUS(ember_set_log_callback(on_log, (ember_log_level)9, NULL), EMBER_STATUS_INVALID_ARGUMENT, "set_log_callback: level 9");
    ember_notes_params notes_params = ember_notes_default_params();
    ember_notes *notes = NULL;
    EXPECT_STATUS(ember_notes_open(&notes_params, &notes), EMBER_STATUS_INVALID_ARGUMENT, "notes_open: NULL path");
    char missing_db[512];
    snprintf(missing_db, sizeof missing_db, "%s/missing.sqlite", directory);
    notes_params.path = missing_db;
    notes_params.create_if_missing = 0;
    EXPECT_STATUS(ember_notes_open(&notes_params, &notes), EMBER_STATUS_NOT_FOUND, "notes_open: missing database");
    CHECK(ember_abi_version() / 10000 == EMBER_ABI_VERSION / 10000, "ABI major %u != header %u", ember_abi_version(), EMBER_ABI_VERSION);
    CHECK(strcmp(ember_status_name((ember_status)999), "unknown") == 0, "status name of 999");
}

/* ------------------------------------------------------------ test: the model */

static void test_model(const char *model, const char *directory) {
    printf("engine in a budget\n");
    ember_engine_params params = ember_engine_default_params();
    params.model_path = model;
    params.memory_budget_bytes = 160u << 20;
    ember_memory_plan plan = {.struct_size = sizeof plan};
    REQUIRE_OK(ember_plan(&params, &plan), "plan SmolLM2 in 160 MiB");
    printf("  plan: %llu MiB of 160, context %u, kv type %d\n", (unsigned long long)(plan.total_bytes >> 20), plan.context_length,
           plan.kv_type);
    CHECK(plan.total_bytes <= (160u << 20), "the plan (%llu bytes) exceeds the budget", (unsigned long long)plan.total_bytes);

    REQUIRE_OK(ember_set_log_callback(on_log, EMBER_LOG_DEBUG, NULL), "set the log callback");
    ember_engine *engine = NULL;
    REQUIRE_OK(ember_engine_open(&params, &engine), "open SmolLM2 in 160 MiB");
    ember_memory_plan loaded = {.struct_size = sizeof loaded};
    REQUIRE_OK(ember_engine_get_plan(engine, &loaded), "the engine's plan");
    CHECK(loaded.total_bytes == plan.total_bytes, "engine plan %llu != planned %llu", (unsigned long long)loaded.total_bytes,
          (unsigned long long)plan.total_bytes);
    REQUIRE_OK(ember_engine_set_hint_callback(engine, on_hint, NULL), "set the hint callback");

    /* Bad arguments on a live engine. */
    ember_platform_state hot = ember_platform_default_state();
    hot.thermal_status = 9;
    EXPECT_STATUS(ember_engine_update_platform(engine, &hot), EMBER_STATUS_INVALID_ARGUMENT, "update_platform: thermal status 9");
    hot.thermal_status = 3;
    hot.battery_percent = 140;
    EXPECT_STATUS(ember_engine_update_platform(engine, &hot), EMBER_STATUS_INVALID_ARGUMENT, "update_platform: battery 140 %");
    hot.battery_percent = NAN;
    hot.struct_size = 1;
    EXPECT_STATUS(ember_engine_update_platform(engine, &hot), EMBER_STATUS_INVALID_ARGUMENT, "update_platform: struct_size 1");
    EXPECT_STATUS(ember_engine_memory_pressure(engine, (ember_memory_pressure)7), EMBER_STATUS_INVALID_ARGUMENT,
                  "memory_pressure: level 7");
    ember_chat_params chat_params = ember_chat_default_params();
    ember_chat *chat = NULL;
    chat_params.temperature = -1;
    EXPECT_STATUS(ember_chat_create(engine, &chat_params, &chat), EMBER_STATUS_INVALID_ARGUMENT, "chat_create: temperature -1");
    chat_params = ember_chat_default_params();
    chat_params.max_tokens = 0;
    EXPECT_STATUS(ember_chat_create(engine, &chat_params, &chat), EMBER_STATUS_INVALID_ARGUMENT, "chat_create: max_tokens 0");
    EXPECT_STATUS(ember_chat_create(engine, &chat_params, NULL), EMBER_STATUS_INVALID_ARGUMENT, "chat_create: NULL out_chat");
    EXPECT_STATUS(ember_chat_create((ember_engine *)(uintptr_t)0x7777770, &chat_params, &chat), EMBER_STATUS_INVALID_ARGUMENT,
                  "chat_create: forged engine");
    chat_params = ember_chat_default_params();
    chat_params.json_schema = "{\"anyOf\":[{\"type\":\"string\"}]}";
    EXPECT_STATUS(ember_chat_create(engine, &chat_params, &chat), EMBER_STATUS_INVALID_ARGUMENT, "chat_create: unsupported json_schema");
    chat_params = ember_chat_default_params();
    chat_params.struct_size = offsetof(ember_chat_params, json_schema);
    chat_params.json_schema = "{ not read: beyond the first version's struct_size";
    EXPECT_STATUS(ember_chat_create(engine, &chat_params, &chat), EMBER_STATUS_OK, "chat_create: the first version's struct_size");
    REQUIRE_OK(ember_chat_destroy(chat), "destroy a chat");
    chat = NULL;
    {
        printf("a reply constrained to a JSON Schema\n");
        ember_chat_params schema_params = ember_chat_default_params();
        schema_params.temperature = 0;
        schema_params.max_tokens = 32;
        schema_params.json_schema = "{\"type\":\"object\",\"properties\":{\"answer\":{\"enum\":[\"yes\",\"no\"]}},"
                                    "\"required\":[\"answer\"],\"additionalProperties\":false}";
        ember_chat *schema_chat = NULL;
        REQUIRE_OK(ember_chat_create(engine, &schema_params, &schema_chat), "create a chat with a json_schema");
        events state;
        events_init(&state);
        ember_status outcome = send_and_wait(schema_chat, "Is Paris in France? Answer as JSON.", &state, NULL);
        CHECK(outcome == EMBER_STATUS_OK, "the constrained reply ended with %s", ember_status_name(outcome));
        state.text[state.text_length < sizeof state.text ? state.text_length : sizeof state.text - 1] = '\0';
        // The grammar allows bounded white space between JSON tokens (none inside these strings).
        char compact[sizeof state.text];
        size_t kept = 0;
        for (const char *c = state.text; *c != '\0'; c++) {
            if (*c != ' ' && *c != '\n' && *c != '\t' && *c != '\r') compact[kept++] = *c;
        }
        compact[kept] = '\0';
        CHECK(strcmp(compact, "{\"answer\":\"yes\"}") == 0 || strcmp(compact, "{\"answer\":\"no\"}") == 0,
              "the constrained reply is not a document of the schema: %s", state.text);
        REQUIRE_OK(ember_chat_destroy(schema_chat), "destroy a chat");
    }

    printf("a streamed reply\n");
    chat = greedy_chat(engine, 48);
    ember_request_params request_params = ember_request_default_params();
    ember_request *request = NULL;
    EXPECT_STATUS(ember_chat_send(chat, "\xff\xfe broken", &request_params, &request), EMBER_STATUS_INVALID_ARGUMENT,
                  "chat_send: invalid UTF-8");
    EXPECT_STATUS(ember_chat_send(chat, NULL, &request_params, &request), EMBER_STATUS_INVALID_ARGUMENT, "chat_send: NULL message");
    request_params.request_class = (ember_request_class)5;
    EXPECT_STATUS(ember_chat_send(chat, "hi", &request_params, &request), EMBER_STATUS_INVALID_ARGUMENT, "chat_send: request class 5");
    request_params = ember_request_default_params();
    request_params.struct_size = sizeof request_params - 8;
    EXPECT_STATUS(ember_chat_send(chat, "hi", &request_params, &request), EMBER_STATUS_INVALID_ARGUMENT,
                  "chat_send: struct_size of an older struct");

    events reply;
    events_init(&reply);
    reply.print = 1;
    printf("  > ");
    ember_statistics statistics;
    ember_status status = send_and_wait(chat, "What is the capital of France?", &reply, &statistics);
    printf("\n");
    CHECK(status == EMBER_STATUS_OK, "the reply ended with %s (%s)", ember_status_name(status), ember_last_error());
    CHECK(reply.prompt_done == 1, "%d prompt-done events", reply.prompt_done);
    CHECK(reply.tokens > 0 && reply.finished == 1 && reply.errors == 0, "tokens %d, finished %d, errors %d", reply.tokens,
          reply.finished, reply.errors);
    CHECK(reply.text_length > 0, "an empty reply");
    CHECK(statistics.generated_tokens == (uint32_t)reply.tokens || statistics.generated_tokens + 1 == (uint32_t)reply.tokens,
          "statistics say %u tokens, events %d", statistics.generated_tokens, reply.tokens);
    printf("  %u prompt tokens, %u generated, first token after %.1f ms, %.1f tokens/s, %d paced events, peak RSS %llu MiB\n",
           statistics.prompt_tokens, statistics.generated_tokens, statistics.time_to_first_token_ns / 1e6,
           statistics.decode_tokens_per_second, reply.paced, (unsigned long long)(statistics.peak_resident_bytes >> 20));
    CHECK(SANITIZED || statistics.peak_resident_bytes <= (160u << 20), "peak RSS %llu bytes is over the 160 MiB budget",
          (unsigned long long)statistics.peak_resident_bytes);

    printf("a second request cancelled mid-prompt\n");
    {
        static char long_message[32768];
        size_t length = 0;
        for (int index = 0; index < 40 && length + 200 < sizeof long_message; index++)
            length += (size_t)snprintf(long_message + length, sizeof long_message - length,
                                       "Paragraph %d: the battery drains faster when the screen is bright. ", index);
        events cancelled;
        events_init(&cancelled);
        request_params = ember_request_default_params();
        request_params.on_event = on_event;
        request_params.user_data = &cancelled;
        REQUIRE_OK(ember_chat_send(chat, long_message, &request_params, &request), "send a long message");
        ember_request *second = NULL;
        ember_request_params quiet = ember_request_default_params();
        EXPECT_STATUS(ember_chat_send(chat, "and another", &quiet, &second), EMBER_STATUS_BUSY, "chat_send: chat busy");
        if (second) ember_request_release(second);
        EXPECT_STATUS(ember_request_wait(request, 1000, NULL), EMBER_STATUS_TIMEOUT, "request_wait: 1 µs timeout");
        sleep_seconds(0.05);
        double start = now_seconds();
        REQUIRE_OK(ember_request_cancel(request), "cancel");
        EXPECT_STATUS(ember_request_wait(request, 30ull * 1000000000ull, NULL), EMBER_STATUS_CANCELLED, "request_wait: cancelled");
        double stopped = now_seconds() - start;
        CHECK(events_get(&cancelled, &cancelled.prompt_done) == 0, "the prompt completed before the cancel");
        CHECK(cancelled.tokens == 0 && cancelled.errors == 1 && cancelled.error_status == EMBER_STATUS_CANCELLED,
              "tokens %d, errors %d, status %s", cancelled.tokens, cancelled.errors, ember_status_name(cancelled.error_status));
        printf("  stopped %.0f ms after the cancel\n", stopped * 1000);
        REQUIRE_OK(ember_request_release(request), "release the cancelled request");
        EXPECT_STATUS(ember_request_release(request), EMBER_STATUS_INVALID_ARGUMENT, "request_release: twice");

        /* The callback's return value cancels too. */
        events by_callback;
        events_init(&by_callback);
        by_callback.cancel_after_tokens = 3;
        status = send_and_wait(chat, "Tell me a long story about a dragon.", &by_callback, NULL);
        CHECK(status == EMBER_STATUS_CANCELLED, "cancel from the callback: %s", ember_status_name(status));
        CHECK(by_callback.tokens == 3, "%d tokens after the callback asked to cancel at 3", by_callback.tokens);

        /* The chat answers again after its cancelled turns. */
        events again;
        events_init(&again);
        status = send_and_wait(chat, "What is the capital of Italy?", &again, NULL);
        CHECK(status == EMBER_STATUS_OK && again.tokens > 0, "after the cancels: %s, %d tokens", ember_status_name(status), again.tokens);

        /* A message longer than the context. */
        static char huge[65536];
        length = 0;
        while (length + 100 < sizeof huge) length += (size_t)snprintf(huge + length, sizeof huge - length, "The battery drains. ");
        events full;
        events_init(&full);
        status = send_and_wait(chat, huge, &full, NULL);
        CHECK(status == EMBER_STATUS_CONTEXT_FULL && full.errors == 1 && full.error_status == EMBER_STATUS_CONTEXT_FULL,
              "a message longer than the context: %s, error events %d", ember_status_name(status), full.errors);
        printf("  error path: %-42s -> %-17s %s\n", "chat_send: message longer than the context", ember_status_name(status),
               ember_last_error());
    }

    printf("a hot phone paces the reply\n");
    {
        ember_chat *hot_chat = greedy_chat(engine, 64);
        ember_platform_state critical = ember_platform_default_state();
        critical.thermal_status = 4; /* CRITICAL */
        critical.thermal_headroom = 0.99;
        critical.is_charging = 0;
        critical.battery_percent = 40;
        REQUIRE_OK(ember_engine_update_platform(engine, &critical), "push a critical thermal state");
        events paced;
        events_init(&paced);
        request_params = ember_request_default_params();
        request_params.on_event = on_event;
        request_params.user_data = &paced;
        REQUIRE_OK(ember_chat_send(hot_chat, "Name three rivers.", &request_params, &request), "send while hot");
        double start = now_seconds();
        while (events_get(&paced, &paced.paced_thermal) == 0 && now_seconds() - start < 120) sleep_seconds(0.01);
        CHECK(events_get(&paced, &paced.paced_thermal) > 0, "no thermal pause in 120 s of CRITICAL");
        ember_platform_state cool = ember_platform_default_state();
        REQUIRE_OK(ember_engine_update_platform(engine, &cool), "cool down");
        status = ember_request_wait(request, 120ull * 1000000000ull, &statistics);
        CHECK(status == EMBER_STATUS_OK, "the paced reply ended with %s", ember_status_name(status));
        printf("  %d paced events (%d thermal pauses), %d tokens\n", paced.paced, paced.paced_thermal, paced.tokens);
        REQUIRE_OK(ember_request_release(request), "release");
        REQUIRE_OK(ember_chat_destroy(hot_chat), "destroy the chat");
    }
    pthread_mutex_lock(&counter_lock);
    printf("  %d hints (%d boosts, %d target durations) with %d thread ids; %d log lines\n", hint_count, hint_boosts, hint_targets,
           hint_threads, log_lines);
    CHECK(hint_count > 0 && hint_boosts > 0, "hints: %d, boosts %d", hint_count, hint_boosts);
    CHECK(hint_threads > 0, "hints carry no thread ids");
    CHECK(log_lines > 0, "no log lines");
    pthread_mutex_unlock(&counter_lock);
    REQUIRE_OK(ember_engine_memory_pressure(engine, EMBER_MEMORY_PRESSURE_CRITICAL), "a critical memory warning");

    printf("notes\n");
    {
        char path[512];
        snprintf(path, sizeof path, "%s/notes.sqlite", directory);
        ember_notes_params notes_params = ember_notes_default_params();
        notes_params.path = path;
        ember_notes *notes = NULL;
        REQUIRE_OK(ember_notes_open(&notes_params, &notes), "open the notes");
        int64_t first = 0, second = 0, third = 0;
        REQUIRE_OK(ember_notes_add(notes, "Battery tips", "Lower the screen brightness and turn off background refresh to save battery.",
                                   "phone, battery", &first), "add a note");
        REQUIRE_OK(ember_notes_add(notes, "Groceries", "Milk, eggs, bread and coffee.", NULL, &second), "add a note");
        REQUIRE_OK(ember_notes_add(notes, "Trip", "Train to Lyon on Friday; the battery pack is in the blue bag.", "travel", &third),
                   "add a note");
        EXPECT_STATUS(ember_notes_add(notes, "bad", "\xc3\x28", NULL, &second), EMBER_STATUS_INVALID_ARGUMENT, "notes_add: invalid UTF-8");
        char *json = NULL;
        REQUIRE_OK(ember_notes_search(notes, "battery", 10, &json), "search");
        printf("  search \"battery\": %s\n", json);
        char first_id[32];
        snprintf(first_id, sizeof first_id, "\"id\":%lld,", (long long)first);
        CHECK(strstr(json, first_id) != NULL && strstr(json, "Groceries") == NULL, "search results: %s", json);
        CHECK(strstr(json, first_id) < strstr(json, "Trip"), "the title match is not first: %s", json);
        ember_free(json);
        json = NULL;
        EXPECT_STATUS(ember_notes_search(notes, "!!!", 10, &json), EMBER_STATUS_INVALID_ARGUMENT, "notes_search: no word");
        EXPECT_STATUS(ember_notes_search(notes, "battery", 0, &json), EMBER_STATUS_INVALID_ARGUMENT, "notes_search: limit 0");
        EXPECT_STATUS(ember_notes_get(notes, 999999, &json), EMBER_STATUS_NOT_FOUND, "notes_get: no such note");

        events summary;
        events_init(&summary);
        request_params = ember_request_default_params();
        request_params.request_class = EMBER_REQUEST_BACKGROUND;
        request_params.deadline_ns = 600ull * 1000000000ull;
        request_params.on_event = on_event;
        request_params.user_data = &summary;
        EXPECT_STATUS(ember_notes_summarize(notes, engine, 999999, &request_params, &request), EMBER_STATUS_NOT_FOUND,
                      "notes_summarize: no such note");
        REQUIRE_OK(ember_notes_summarize(notes, engine, first, &request_params, &request), "summarize a note");
        status = ember_request_wait(request, 300ull * 1000000000ull, &statistics);
        CHECK(status == EMBER_STATUS_OK, "the summary ended with %s (%s)", ember_status_name(status), ember_last_error());
        REQUIRE_OK(ember_request_release(request), "release the summary");
        REQUIRE_OK(ember_notes_get(notes, first, &json), "read the note back");
        printf("  summary: %s\n  note: %s\n", summary.text, json);
        CHECK(summary.finished == 1 && summary.text_length > 0, "summary events: finished %d, %zu bytes", summary.finished,
              summary.text_length);
        CHECK(strstr(json, "\"summary\":null") == NULL, "the summary was not stored: %s", json);
        ember_free(json);
        REQUIRE_OK(ember_notes_close(notes), "close the notes");
        EXPECT_STATUS(ember_notes_close(notes), EMBER_STATUS_INVALID_ARGUMENT, "notes_close: twice");
    }

    REQUIRE_OK(ember_chat_destroy(chat), "destroy the chat");
    EXPECT_STATUS(ember_chat_destroy(chat), EMBER_STATUS_INVALID_ARGUMENT, "chat_destroy: twice");
    REQUIRE_OK(ember_engine_close(engine), "close the engine");
    EXPECT_STATUS(ember_engine_close(engine), EMBER_STATUS_INVALID_ARGUMENT, "engine_close: twice");
    EXPECT_STATUS(ember_engine_update_platform(engine, &hot), EMBER_STATUS_INVALID_ARGUMENT, "update_platform: closed engine");

    printf("a model opened from a file descriptor\n");
    {
        int descriptor = open(model, O_RDONLY);
        CHECK(descriptor >= 0, "open %s: %s", model, strerror(errno));
        ember_engine_params fd_params = ember_engine_default_params();
        fd_params.model_fd = descriptor;
        fd_params.model_name = "SmolLM2 (descriptor)";
        fd_params.context_length = 512;
        ember_engine *from_fd = NULL;
        REQUIRE_OK(ember_engine_open(&fd_params, &from_fd), "open from a descriptor");
        ember_chat *fd_chat = greedy_chat(from_fd, 16);
        events fd_reply;
        events_init(&fd_reply);
        status = send_and_wait(fd_chat, "What is the capital of France?", &fd_reply, NULL);
        CHECK(status == EMBER_STATUS_OK && fd_reply.tokens > 0, "reply from the descriptor's model: %s", ember_status_name(status));
        /* The request keeps its chat, the chat its engine: close in any order. */
        REQUIRE_OK(ember_engine_close(from_fd), "close");
        status = send_and_wait(fd_chat, "And of Spain?", &fd_reply, NULL);
        CHECK(status == EMBER_STATUS_OK, "a chat outliving its engine handle: %s", ember_status_name(status));
        REQUIRE_OK(ember_chat_destroy(fd_chat), "destroy");
        close(descriptor);
    }
    REQUIRE_OK(ember_set_log_callback(NULL, EMBER_LOG_DEBUG, NULL), "remove the log callback");
}

/* ------------------------------------------------------------ other modes */

static int greedy(const char *model, int max_tokens, const char *prompt) {
    ember_engine *engine = open_engine(model, 0, 0, 0);
    ember_chat *chat = greedy_chat(engine, (uint32_t)max_tokens);
    events reply;
    events_init(&reply);
    ember_status status = send_and_wait(chat, prompt, &reply, NULL);
    if (status != EMBER_STATUS_OK) {
        fprintf(stderr, "greedy: %s (%s)\n", ember_status_name(status), ember_last_error());
        return 1;
    }
    for (int index = 0; index < reply.id_count; index++) printf("%s%d", index ? "," : "", reply.ids[index]);
    printf("\n");
    ember_chat_destroy(chat);
    ember_engine_close(engine);
    return 0;
}

/* `count` chats created, each sending one request and destroyed; every other request runs to its
 * end, the others are released at once (cancelled). Returns how many completed; `tenths` (if not
 * NULL) receives the seconds of the first and the last tenth of the run, so a slowdown that grows
 * with the count shows. */
static int chat_request_cycles(ember_engine *engine, int count, double *tenths) {
    ember_request_params params = ember_request_default_params();
    int completed = 0, tenth = count / 10 > 0 ? count / 10 : 1;
    double mark = now_seconds();
    for (int index = 0; index < count; index++) {
        ember_chat *chat = greedy_chat(engine, 1);
        ember_request *request = NULL;
        REQUIRE_OK(ember_chat_send(chat, "Hello", &params, &request), "send");
        if (index % 2 == 0 && ember_request_wait(request, UINT64_MAX, NULL) == EMBER_STATUS_OK) completed++;
        REQUIRE_OK(ember_request_release(request), "release");
        REQUIRE_OK(ember_chat_destroy(chat), "destroy");
        if (tenths && index == tenth - 1) tenths[0] = now_seconds() - mark;
        if (tenths && index == count - tenth - 1) mark = now_seconds();
    }
    if (tenths) tenths[1] = now_seconds() - mark;
    return completed;
}

static int cycles(const char *model, int opens, int requests) {
    /* Warm-up: the first cycles allocate what every later one reuses (runtime caches, malloc arenas). */
    for (int index = 0; index < 20; index++) ember_engine_close(open_engine(model, 0, 0, 1));
    long before_raw = resident_kib();
    long before = settled_resident_kib();
    double start = now_seconds();
    for (int index = 0; index < opens; index++) {
        ember_engine *engine = open_engine(model, 0, 0, 1);
        REQUIRE_OK(ember_engine_close(engine), "close");
    }
    long after_raw = resident_kib();
    long after = settled_resident_kib();
    printf("engine open/close: %d cycles in %.1f s, RSS %ld KiB before, %ld KiB after (%+ld KiB); before malloc_trim %ld, %ld KiB\n", opens,
           now_seconds() - start, before, after, after - before, before_raw, after_raw);
    int failed = labs(after - before) > 2048;

    ember_engine *engine = open_engine(model, 0, 0, 1);
    /* Warm-up with the same mix as the measured run and as long as its first third: the first completed
     * requests touch the planned key/value and scratch pages, and Swift's and libdispatch's worker
     * threads (each with its stack and malloc arena) start as the load asks for them, once. */
    chat_request_cycles(engine, requests / 3 > 200 ? requests / 3 : 200, NULL);
    before_raw = resident_kib();
    before = settled_resident_kib();
    int threads_before = thread_count();
    start = now_seconds();
    double tenths[2] = {0, 0};
    int completed = chat_request_cycles(engine, requests, tenths);
    after_raw = resident_kib();
    after = settled_resident_kib();
    printf("chat requests created and released: %d (%d completed) in %.1f s, RSS %ld KiB before, %ld KiB after (%+ld KiB); "
           "before malloc_trim %ld, %ld KiB; threads %d, then %d; first tenth %.2f s, last tenth %.2f s\n", requests, completed,
           now_seconds() - start, before, after, after - before, before_raw, after_raw, threads_before, thread_count(), tenths[0], tenths[1]);
    failed |= labs(after - before) > 2048;
    REQUIRE_OK(ember_engine_close(engine), "close");
    return failed;
}

static int bench(const char *model, uint32_t threads, uint32_t tokens, int repetitions) {
    ember_engine *engine = open_engine(model, 0, threads, 0);
    double sum = 0, sum_squares = 0;
    int measured = 0;
    uint32_t prompt_tokens = 0;
    for (int index = 0; index <= repetitions; index++) {
        ember_chat_params params = ember_chat_default_params();
        params.temperature = 0;
        params.max_tokens = tokens;
        ember_chat *chat = NULL;
        REQUIRE_OK(ember_chat_create(engine, &params, &chat), "chat");
        events reply;
        events_init(&reply);
        ember_statistics statistics;
        ember_status status = send_and_wait(chat, "Write a long story about a lighthouse keeper and a storm.", &reply, &statistics);
        REQUIRE_OK(ember_chat_destroy(chat), "destroy");
        if (status != EMBER_STATUS_OK) { fprintf(stderr, "bench: %s\n", ember_last_error()); return 1; }
        if (index == 0) continue; /* warm-up */
        printf("  run %d: %u tokens, %.2f tokens/s\n", index, statistics.generated_tokens, statistics.decode_tokens_per_second);
        prompt_tokens = statistics.prompt_tokens;
        sum += statistics.decode_tokens_per_second;
        sum_squares += statistics.decode_tokens_per_second * statistics.decode_tokens_per_second;
        measured++;
    }
    double mean = sum / measured;
    double deviation = measured > 1 ? sqrt(fmax(0, (sum_squares - measured * mean * mean) / (measured - 1))) : 0;
    /* The reply's steps attend over the chat prompt: `ember bench --depth` with this count measures the same. */
    printf("decode through the C API: %.2f ± %.2f tokens/s (%d threads, %u tokens, %d runs, %u prompt tokens)\n", mean, deviation, threads,
           tokens, measured, prompt_tokens);
    ember_engine_close(engine);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "test") == 0) {
        char directory[] = "/tmp/ember-c-client-XXXXXX";
        if (!mkdtemp(directory)) { perror("mkdtemp"); return 1; }
        test_error_paths(argv[2], directory);
        test_model(argv[2], directory);
        char command[600];
        snprintf(command, sizeof command, "rm -rf '%s'", directory);
        if (system(command) != 0) fprintf(stderr, "could not remove %s\n", directory);
        printf("%d checks, %d failed\n", checks, failures);
        return failures == 0 ? 0 : 1;
    }
    if (argc == 5 && strcmp(argv[1], "greedy") == 0) return greedy(argv[2], atoi(argv[3]), argv[4]);
    if (argc == 5 && strcmp(argv[1], "cycles") == 0) return cycles(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 6 && strcmp(argv[1], "bench") == 0)
        return bench(argv[2], (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: ember_client test MODEL | greedy MODEL TOKENS PROMPT | cycles MODEL OPENS REQUESTS | "
                    "bench MODEL THREADS TOKENS REPETITIONS\n");
    return 2;
}
