# jsonrpc: build the C module in place, run the demo, the tests, the fuzzers
# and the benchmarks. `make` builds for Lua 5.4; `make LUA=5.3|5.1|luajit`
# builds for another Lua into its own directory under build/.

LUA      ?= 5.4
SAN      ?=
ifeq ($(LUA),luajit)
  LUA_INC := /usr/include/luajit-2.1
  LUA_BIN := luajit
  LUA_LIB := luajit-5.1
else
  LUA_INC := /usr/include/lua$(LUA)
  LUA_BIN := lua$(LUA)
  LUA_LIB := lua$(LUA)
endif

BUILD    := build/$(LUA)$(if $(SAN),-san)
MODULE   := $(BUILD)/jsonrpc/core.so
SRCS     := $(wildcard csrc/*.c csrc/*/*.c)
OBJS     := $(SRCS:csrc/%.c=$(BUILD)/obj/%.o)
HDRS     := $(wildcard csrc/*/*.h)

CC       ?= cc
OPT      ?= -O2
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= $(OPT) -g
ALLFLAGS := -std=gnu99 -fPIC -fvisibility=hidden $(WARN) -Icsrc -I$(LUA_INC) $(CFLAGS)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ifneq ($(SAN),)
  ALLFLAGS += $(SANFLAGS)
  LDSAN    := $(SANFLAGS)
endif

# The module is usable straight from the checkout with these paths.
export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: all deps demo plugin test mutants fuzz fuzz-short soak bench bench-openresty bench-codec bench-dispatch bench-framing clean

all: deps $(MODULE)

deps: build/.deps
build/.deps: scripts/install-deps
	@scripts/install-deps
	@mkdir -p build && touch $@

$(BUILD)/obj/%.o: csrc/%.c $(HDRS) | build/.deps
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -c $< -o $@

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDSAN) -o $@ $(OBJS) -luv -lm

demo: all
	$(LUA_BIN) examples/codec_demo.lua
	@echo
	$(LUA_BIN) examples/endpoints_demo.lua
	@echo
	$(LUA_BIN) examples/hooks_demo.lua
	@echo
	$(LUA_BIN) examples/lsp_client.lua

test: deps
	@scripts/test

# Every one-line mutation in mutants/list must make the specs fail.
mutants: deps
	@scripts/mutants

fuzz: deps
	@scripts/fuzz $(or $(FUZZ_SECONDS),60)

fuzz-short: deps
	@scripts/fuzz $(or $(FUZZ_SECONDS),10)

# Hostile clients against `jsonrpc serve` for SOAK_SECONDS (default 60); see
# scripts/soak. Not part of `make test`.
soak: all build/bench/soak
	@scripts/soak $(SOAK_SECONDS)

# A Neovim plugin: lua/jsonrpc/*.lua and lua/jsonrpc/core.so (the LuaJIT
# build) under PLUGIN_DIR; add it to 'runtimepath' (or a package manager's
# directory) and require "jsonrpc" works with no path edits.
PLUGIN_DIR ?= build/nvim-plugin
plugin:
	$(MAKE) --no-print-directory LUA=luajit
	rm -rf $(PLUGIN_DIR)/lua/jsonrpc
	mkdir -p $(PLUGIN_DIR)/lua
	cp -R lua/jsonrpc $(PLUGIN_DIR)/lua/jsonrpc
	cp build/luajit/jsonrpc/core.so $(PLUGIN_DIR)/lua/jsonrpc/core.so

# Against peers (vscode-jsonrpc, pure Lua on luv + cjson, the floor); see
# bench/run.lua. BENCH_ARGS passes options (--runs 5, --only ours,floor...).
bench: all build/bench/loadgen build/bench/floor
	$(MAKE) --no-print-directory LUA=luajit
	bench/setup
	lua5.4 bench/run.lua $(BENCH_ARGS)
	lua5.4 bench/readme.lua
	lua5.4 bench/openresty.lua

# nginx with jsonrpc.ngx.serve against nginx with a pure-Lua cjson
# dispatcher; see bench/openresty.lua. OPENRESTY_ARGS: --pairs N...
bench-openresty: all
	$(MAKE) --no-print-directory LUA=luajit
	bench/setup
	lua5.4 bench/openresty.lua $(OPENRESTY_ARGS)

bench-codec: all
	$(LUA_BIN) bench/codec.lua

bench-dispatch: all
	$(LUA_BIN) bench/dispatch.lua

bench-framing: all
	$(LUA_BIN) bench/framing.lua

# C programs for the benchmarks against peers (issue: benchmarks)
build/bench/%: bench/%.c bench/frames.h bench/answers.h | build/.deps
	@mkdir -p build/bench
	$(CC) -O2 -g -D_GNU_SOURCE $(WARN) -o $@ $< -luv

clean:
	rm -rf build
