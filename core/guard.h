/*
 * guard: the last step before a patient message or an Open Dental commlog leaves odsync —
 * the send ledger (at most once) and the send-time policy re-check (R22) — plugged into
 * delivery as a deliver_gate.
 *
 * Before a batch goes to its sink, for each message:
 *   ledger terminal (sent, skipped, expired, unknown)  -> the outbox row is done, not sent
 *   ledger "sending" (a crash came between the ledger write and the provider's answer)
 *                                                      -> "unknown": never sent again
 *   occasion gone (booked, fulfilled, recall moved)    -> skipped, with the reason
 *   consent lost (opt-out from any source, TxtMsgOk No, address changed)
 *                                                      -> skipped
 *   caps or quiet hours                                -> held until allowed
 *   expired                                            -> expired
 *   otherwise                                          -> "sending" committed, then sent
 * After the sink answers: OK -> "sent" with the provider id (and a commlog queued when the
 * office writes back); a final failure -> "failed"; anything else -> queued again.
 * Commlogs only pass the ledger (no policy). Other record kinds pass untouched.
 */
#ifndef ODSYNC_GUARD_H
#define ODSYNC_GUARD_H

#include <stdint.h>

#include "config.h"
#include "deliver.h"

/* Fill gate for cfg (borrowed; must outlive every pass that uses the gate). */
void guard_gate(struct deliver_gate *gate, const struct config *cfg);

#endif
