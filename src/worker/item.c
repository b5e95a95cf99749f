#include "item.h"

#include <stdlib.h>
#include <string.h>

void item_plan_clear(struct item *it)
{
    int round = it->plan.round;
    json_decref(it->plan.changes);
    memset(&it->plan, 0, sizeof it->plan);
    it->plan.round = round;
}

void item_clear(struct item *it)
{
    free(it->pfa_id);
    json_decref(it->delta);
    json_decref(it->mirror_data);
    json_decref(it->changed_since_base);
    json_decref(it->plan.changes);
    memset(it, 0, sizeof *it);
}

void items_free(struct item *items, int n)
{
    if (!items)
        return;
    for (int i = 0; i < n; i++)
        item_clear(&items[i]);
    free(items);
}
