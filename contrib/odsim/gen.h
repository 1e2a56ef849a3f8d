/*
 * gen: deterministic data generation. From (--seed, --patients, office number, start day)
 * it fills SQLite with one practice per office: clinics, providers, preferences, recall
 * types, families of patients, recalls, appointments (complete, scheduled, broken,
 * unscheduled, planned, deleted), procedures, appointment history and commlogs. The same
 * inputs always give the same rows. Needs sim.db_lock (or a single thread at start-up).
 */
#ifndef ODSIM_GEN_H
#define ODSIM_GEN_H

#include "odsim.h"

/* 1 when the open database already holds a dataset generated from the same seed, patient
 * count, office count and start day (a reused --db FILE), 0 otherwise. */
int gen_matches(struct sim *s);

/* Empty every table and generate all offices. Returns ODSYNC_OK or ODSYNC_STORE. */
int gen_generate(struct sim *s);

/* Fictional names for new patients made at run time (borrowed, static). */
const char *gen_first_name(uint64_t *rng);
const char *gen_last_name(uint64_t *rng);

/* The customer key of office n (2..): 16 letters and digits derived from n alone. */
void gen_office_key(int n, char out[17]);

#endif
