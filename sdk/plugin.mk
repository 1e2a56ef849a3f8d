# plugin.mk: build rules for an out-of-tree odsync connector plugin.
#
# Installed by `make install-sdk` as $(prefix)/share/odsync/plugin.mk. A connector's Makefile is:
#
#     PLUGIN := jsonl
#     SOURCES := jsonl.c
#     include $(or $(shell pkg-config --variable=plugin_mk odsync-sdk),$(error odsync-sdk not found ...))
#
# Targets:
#   all      $(PLUGIN).so (objects and dependency files under $(BUILDDIR)/), mode 0755
#   install  $(DESTDIR)$(PLUGINDIR)/$(PLUGIN).so, mode 0755
#   clean    remove what `all` made
#
# Variables you may set (in the Makefile or on the command line):
#   PLUGIN        plugin name, [a-z0-9_-]+, the same as the descriptor's .name: the config's
#                 "plugin": "NAME" loads NAME.so (required)
#   SOURCES       the plugin's .c files, relative paths below this directory (required)
#   EXTRA_CFLAGS  added after the SDK's flags, e.g. -Ivendor $(shell pkg-config --cflags zlib)
#   EXTRA_LIBS    added to the link line, e.g. -lz or $(shell pkg-config --libs zlib)
#                 (every symbol must resolve: -z defs)
#   CFLAGS        optimisation and debug flags (default -O2 -g)
#   CPPFLAGS, LDFLAGS, LDLIBS, CC, PKG_CONFIG   the usual meaning
#   BUILDDIR      where objects go (default build)
#   PLUGINDIR     install directory (default: pkg-config's plugindir variable for odsync-sdk)
#   DESTDIR       staging root for packagers
#
# Always passed: -std=c11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden when compiling, and
# -shared -Wl,-z,defs when linking, so a reference to a host symbol (or to a library missing
# from EXTRA_LIBS) fails the build instead of the load.
# Requires GNU make and an ELF toolchain (gcc or clang with GNU ld, gold, lld or mold).

ODSYNC_SDK_PC := odsync-sdk
PKG_CONFIG ?= pkg-config

ifeq ($(strip $(PLUGIN)),)
$(error plugin.mk: set PLUGIN := <name> (the descriptor's .name) before including plugin.mk)
endif
ifneq ($(words $(PLUGIN)),1)
$(error plugin.mk: PLUGIN must be one word, got "$(PLUGIN)")
endif
# The loader's rule for names: [a-z0-9_-]{1,32}. REST = PLUGIN minus allowed characters
# (must be empty); SPLIT = PLUGIN with a space after each character (to count them).
ODSYNC_NAME_REST := $(PLUGIN)
ODSYNC_NAME_SPLIT := $(PLUGIN)
$(foreach c,a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5 6 7 8 9 _ -,\
  $(eval ODSYNC_NAME_REST := $(subst $(c),,$(ODSYNC_NAME_REST)))\
  $(eval ODSYNC_NAME_SPLIT := $(subst $(c),$(c) ,$(ODSYNC_NAME_SPLIT))))
ifneq ($(ODSYNC_NAME_REST)$(word 33,$(ODSYNC_NAME_SPLIT)),)
$(error plugin.mk: PLUGIN must match [a-z0-9_-]{1,32} (a name like "jsonl", not a path); got "$(PLUGIN)")
endif
ifeq ($(strip $(SOURCES)),)
$(error plugin.mk: set SOURCES := <your .c files> before including plugin.mk)
endif

# Targets that need no SDK (clean works even when pkg-config cannot find it).
ODSYNC_NOSDK_GOALS := clean
ifneq ($(filter-out $(ODSYNC_NOSDK_GOALS),$(or $(MAKECMDGOALS),all)),)
ifneq ($(shell $(PKG_CONFIG) --exists $(ODSYNC_SDK_PC) && echo yes),yes)
$(error $(PKG_CONFIG) cannot find $(ODSYNC_SDK_PC). Install the SDK from an odsync checkout with \
`make install-sdk PREFIX=/some/prefix` and then set \
PKG_CONFIG_PATH=/some/prefix/lib/pkgconfig (current PKG_CONFIG_PATH: "$(PKG_CONFIG_PATH)"))
endif
ODSYNC_SDK_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(ODSYNC_SDK_PC))
ifeq ($(origin PLUGINDIR),undefined)
PLUGINDIR := $(shell $(PKG_CONFIG) --variable=plugindir $(ODSYNC_SDK_PC))
endif
endif

CC       ?= cc
CFLAGS   ?= -O2 -g
BUILDDIR ?= build
DESTDIR  ?=

ODSYNC_SO     := $(PLUGIN).so
ODSYNC_OBJS   := $(patsubst %.c,$(BUILDDIR)/%.o,$(SOURCES))
ODSYNC_DEPS   := $(ODSYNC_OBJS:.o=.d)
ODSYNC_CFLAGS  = -std=c11 -Wall -Wextra -Werror -fPIC -fvisibility=hidden $(ODSYNC_SDK_CFLAGS) \
                 $(CPPFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
ODSYNC_LDFLAGS = -shared -Wl,-z,defs $(LDFLAGS)

.DEFAULT_GOAL := all
.PHONY: all install clean
.DELETE_ON_ERROR:

all: $(ODSYNC_SO)

$(BUILDDIR)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ODSYNC_CFLAGS) -MMD -MP -c $< -o $@

# The loader refuses group- or world-writable files, whatever the umask was: hence chmod.
$(ODSYNC_SO): $(ODSYNC_OBJS)
	$(CC) $(ODSYNC_CFLAGS) $(ODSYNC_LDFLAGS) -o $@ $(ODSYNC_OBJS) $(EXTRA_LIBS) $(LDLIBS)
	chmod 0755 $@

# install(1) replaces the file (new inode) rather than rewriting it in place, so a daemon that
# has the old version mapped keeps running it until restarted. An existing directory's mode
# is left alone, but a group- or world-writable one is refused: odsync would not load from it.
install: $(ODSYNC_SO)
	@if [ -z "$(PLUGINDIR)" ]; then \
	  echo "plugin.mk: no install directory: set PLUGINDIR=/path"; exit 1; fi
	test -d '$(DESTDIR)$(PLUGINDIR)' || install -d -m 0755 '$(DESTDIR)$(PLUGINDIR)'
	@if [ -n "$$(find '$(DESTDIR)$(PLUGINDIR)' -prune \( -perm -020 -o -perm -002 \))" ]; then \
	  echo "plugin.mk: $(DESTDIR)$(PLUGINDIR) is group- or world-writable; odsync refuses" \
	       "to load plugins from it (chmod go-w it first)"; exit 1; fi
	install -m 0755 $(ODSYNC_SO) '$(DESTDIR)$(PLUGINDIR)/$(ODSYNC_SO)'

clean:
	rm -f $(ODSYNC_SO) $(ODSYNC_OBJS) $(ODSYNC_DEPS)

-include $(ODSYNC_DEPS)
