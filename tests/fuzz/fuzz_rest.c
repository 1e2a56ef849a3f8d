/*
 * fuzz_rest: the Open Dental REST adapter (od_rest_*) on arbitrary JSON. The input is parsed
 * as cJSON; every element of an array (or the object itself) goes through each mapper, the
 * way a page of any resource would.
 */
#include <cjson/cJSON.h>

#include "fuzz.h"
#include "od_rest.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_setup();
    return 0;
}

/* Every mapper on one element; results are freed, never inspected. */
static void map_all(const cJSON *elem)
{
    struct model_patient p = {0};
    struct model_recall r = {0};
    struct model_appointment a = {0};
    struct model_procedure pr = {0};
    struct model_clinic c = {0};
    char why[128];

    od_rest_patient(elem, &p, why, sizeof(why));
    model_patient_clear(&p);
    od_rest_recall(elem, &r, why, sizeof(why));
    model_recall_clear(&r);
    od_rest_appointment(elem, &a, why, sizeof(why));
    model_appointment_clear(&a);
    od_rest_procedure(elem, &pr, why, sizeof(why));
    model_procedure_clear(&pr);
    od_rest_clinic(elem, &c, why, sizeof(why));
    model_clinic_clear(&c);
    (void)od_rest_hist_aptnum(elem);
    (void)od_rest_server_time(elem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *json = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *elem;
    if (json == NULL)
        return 0;
    if (cJSON_IsArray(json)) {
        cJSON_ArrayForEach(elem, json) map_all(elem);
    } else {
        map_all(json);
    }
    cJSON_Delete(json);
    return 0;
}
