/*
 * odtruth: compare odsync's canonical store with odsim's data (see odtruth.c).
 */
#ifndef ODSYNC_ODTRUTH_H
#define ODSYNC_ODTRUTH_H

#include <stdint.h>

#include <cjson/cJSON.h>

/* An odsim admin call on 127.0.0.1:sim_port; the parsed answer (caller cJSON_Deletes). */
cJSON *odt_admin(int sim_port, const char *method, const char *path, const char *body);

/* Build dir/truth.db afresh from odsim office 1's tables: bit 0 patients, 1 recalls,
 * 2 appointments, 3 procedures (completed only), 4 clinics (visible only). */
void odt_build_truth(const char *dir, int sim_port, unsigned tables);

/* Rows of table that differ (by primary key and content hash) between dir/odsync.db and
 * dir/truth.db, counted in both directions. */
int64_t odt_differences(const char *dir, const char *table, const char *pk);

/* The first column of the first row of sql on dir/odsync.db (-1 when none). */
int64_t odt_store_int(const char *dir, const char *sql);

#endif
