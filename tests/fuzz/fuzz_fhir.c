/*
 * fuzz_fhir: the FHIR adapter on arbitrary text: od_fhir_bundle walks it as a searchset
 * Bundle of Patients and of Appointments, each resource through its mapper; the text is also
 * read as one bare resource.
 */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "od_fhir.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    return 0;
}

static int each_patient(void *arg, const cJSON *resource)
{
    struct model_patient p = {0};
    char why[128];
    int rc = od_fhir_patient(resource, &p, why, sizeof(why));
    (void)arg;
    model_patient_clear(&p);
    return rc == ODSYNC_NOMEM ? rc : rc == ODSYNC_OK ? ODSYNC_OK : ODSYNC_PARSE;
}

static int each_appointment(void *arg, const cJSON *resource)
{
    struct model_appointment a = {0};
    char why[128];
    int rc = od_fhir_appointment(resource, &a, why, sizeof(why));
    (void)arg;
    model_appointment_clear(&a);
    return rc == ODSYNC_NOMEM ? rc : rc == ODSYNC_PARSE ? ODSYNC_PARSE : ODSYNC_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct od_fhir_stats stats;
    char err[256];
    cJSON *json;

    od_fhir_bundle((const char *)data, size, "Patient", each_patient, NULL, &stats, err,
                   sizeof(err));
    od_fhir_bundle((const char *)data, size, "Appointment", each_appointment, NULL, &stats, err,
                   sizeof(err));
    json = cJSON_ParseWithLength((const char *)data, size);
    if (json != NULL) {
        each_patient(NULL, json);
        each_appointment(NULL, json);
        cJSON_Delete(json);
    }
    return 0;
}
