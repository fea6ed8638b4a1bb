#!/usr/bin/env python3
"""A foreign client of libember.so through ctypes — the path a JNI shim takes: load the library,
declare the functions and structs of include/ember.h, pass a callback, read its events.

    ember_client.py --library .build/ember-c/libember.so --model MODEL [--max-tokens N] PROMPT

prints the greedy token ids of the chat reply to PROMPT, comma-separated (scripts/cabi_test.sh
compares them with `ember generate --chat --temperature 0`). Exit status 1 with one line on failure.
"""
import argparse
import ctypes
import sys
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_float, c_int32, c_int64, c_size_t,
                    c_uint32, c_uint64, c_void_p)

# ember_status values (include/ember.h).
OK, INVALID_ARGUMENT = 0, 1
# ember_event_kind
PROMPT_DONE, TOKEN, PACED, FINISHED, ERROR = 1, 2, 3, 4, 5
UINT64_MAX = (1 << 64) - 1
c_enum = c_int32  # C enums are int-sized on every ABI Ember targets


class EngineParams(Structure):
    _fields_ = [("struct_size", c_size_t), ("model_path", c_char_p), ("model_fd", c_int32), ("model_name", c_char_p),
                ("memory_budget_bytes", c_uint64), ("context_length", c_uint32), ("adjusts_context", c_int32),
                ("thread_count", c_uint32), ("kv_type", c_enum), ("weight_streaming", c_enum), ("batch_size", c_uint32),
                ("prefill_chunk", c_uint32), ("paces_tokens", c_int32)]


class ChatParams(Structure):
    _fields_ = [("struct_size", c_size_t), ("instructions", c_char_p), ("max_tokens", c_uint32), ("temperature", c_float),
                ("top_k", c_uint32), ("top_p", c_float), ("min_p", c_float), ("repetition_penalty", c_float),
                ("seed", c_uint64), ("reuses_cache", c_int32), ("json_schema", c_char_p)]


class Statistics(Structure):
    _fields_ = [("prompt_tokens", c_uint32), ("evaluated_prompt_tokens", c_uint32), ("generated_tokens", c_uint32),
                ("time_to_first_token_ns", c_uint64), ("prefill_tokens_per_second", c_double),
                ("decode_tokens_per_second", c_double), ("peak_resident_bytes", c_uint64)]


class Event(Structure):
    _fields_ = [("struct_size", c_size_t), ("kind", c_enum), ("request", c_void_p),
                ("prompt_tokens", c_uint32), ("prompt_duration_ns", c_uint64),
                ("token_id", c_int32), ("text", ctypes.POINTER(ctypes.c_char)), ("text_length", c_size_t),
                ("paced_duration_ns", c_uint64), ("pace_reason", c_enum),
                ("stop_reason", c_enum), ("statistics", Statistics),
                ("status", c_enum), ("message", c_char_p)]


EventCallback = CFUNCTYPE(c_int32, POINTER(Event), c_void_p)


class RequestParams(Structure):
    _fields_ = [("struct_size", c_size_t), ("request_class", c_enum), ("deadline_ns", c_uint64),
                ("on_event", EventCallback), ("user_data", c_void_p)]


class EmberError(Exception):
    pass


class Ember:
    """The library with every function this client calls declared, as a JNI shim declares its natives."""

    def __init__(self, path):
        library = ctypes.CDLL(path)
        declarations = {
            "ember_abi_version": (c_uint32, []),
            "ember_last_error": (c_char_p, []),
            "ember_status_name": (c_char_p, [c_enum]),
            "ember_engine_default_params": (EngineParams, []),
            "ember_engine_open": (c_enum, [POINTER(EngineParams), POINTER(c_void_p)]),
            "ember_engine_close": (c_enum, [c_void_p]),
            "ember_chat_default_params": (ChatParams, []),
            "ember_chat_create": (c_enum, [c_void_p, POINTER(ChatParams), POINTER(c_void_p)]),
            "ember_chat_destroy": (c_enum, [c_void_p]),
            "ember_request_default_params": (RequestParams, []),
            "ember_chat_send": (c_enum, [c_void_p, c_char_p, POINTER(RequestParams), POINTER(c_void_p)]),
            "ember_request_wait": (c_enum, [c_void_p, c_uint64, POINTER(Statistics)]),
            "ember_request_release": (c_enum, [c_void_p]),
        }
        for name, (result, arguments) in declarations.items():
            function = getattr(library, name)
            function.restype = result
            function.argtypes = arguments
            setattr(self, name[len("ember_"):], function)

    def check(self, status, what):
        if status != OK:
            raise EmberError(f"{what}: {self.status_name(status).decode()}: {self.last_error().decode()}")


def greedy_tokens(ember, model, max_tokens, prompt):
    """The token ids of the greedy chat reply to `prompt`, streamed through the event callback."""
    params = ember.engine_default_params()
    params.model_path = model.encode()
    params.paces_tokens = 0
    engine = c_void_p()
    ember.check(ember.engine_open(ctypes.byref(params), ctypes.byref(engine)), "open the engine")
    try:
        chat_params = ember.chat_default_params()
        chat_params.temperature = 0
        chat_params.max_tokens = max_tokens
        chat = c_void_p()
        ember.check(ember.chat_create(engine, ctypes.byref(chat_params), ctypes.byref(chat)), "create a chat")
        ids, kinds, lock = [], [], threading.Lock()

        @EventCallback
        def on_event(event, user_data):  # on an Ember thread
            with lock:
                kinds.append(event.contents.kind)
                if event.contents.kind == TOKEN and event.contents.token_id >= 0:
                    ids.append(event.contents.token_id)
            return 0

        request_params = ember.request_default_params()
        request_params.on_event = on_event
        request = c_void_p()
        ember.check(ember.chat_send(chat, prompt.encode(), ctypes.byref(request_params), ctypes.byref(request)), "send")
        statistics = Statistics()
        status = ember.request_wait(request, UINT64_MAX, ctypes.byref(statistics))
        ember.check(ember.request_release(request), "release the request")
        ember.check(status, "the reply")
        ember.check(ember.chat_destroy(chat), "destroy the chat")
        if kinds.count(PROMPT_DONE) != 1 or kinds[-1] != FINISHED or statistics.generated_tokens != len(ids):
            raise EmberError(f"unexpected events: {kinds.count(PROMPT_DONE)} prompt-done, last {kinds[-1]}, "
                             f"{statistics.generated_tokens} generated but {len(ids)} token ids")
        return ids
    finally:
        ember.check(ember.engine_close(engine), "close the engine")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("prompt")
    arguments = parser.parse_args()
    try:
        ember = Ember(arguments.library)
        if ember.abi_version() // 10000 != 1:
            raise EmberError(f"libember ABI {ember.abi_version()} is not major version 1")
        # An error path as a port meets it: a NULL handle is a status and a message, not a crash.
        status = ember.engine_close(None)
        if status != INVALID_ARGUMENT or not ember.last_error():
            raise EmberError(f"closing a NULL engine returned {status}")
        print(",".join(map(str, greedy_tokens(ember, arguments.model, arguments.max_tokens, arguments.prompt))))
    except (EmberError, OSError) as error:
        print(f"ember_client.py: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
