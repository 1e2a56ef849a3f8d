/*
 * keys: the deterministic external ids every sink sees. They are built from Open Dental ids
 * and the office id only, so a repeat of any input maps to the same key, and offices never
 * collide:
 *   contact          od:{office}:{PatNum}
 *   recall task      od:{office}:recall:{RecallNum}
 *   review request   od:{office}:apt:{AptNum}:review
 */
#ifndef ODSYNC_KEYS_H
#define ODSYNC_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* Each writes the key into buf; ODSYNC_OK, or ODSYNC_INVALID when id <= 0, the office id is
 * not valid, or buf is too small. */
int keys_contact(char *buf, size_t len, const char *office, int64_t patnum);
int keys_recall_task(char *buf, size_t len, const char *office, int64_t recallnum);
int keys_review(char *buf, size_t len, const char *office, int64_t aptnum);

/* 1 when id is a valid office id: [a-z0-9][a-z0-9_-]{0,31}. */
int keys_valid_office(const char *id);

#endif
