/* Compiled with -std=c99 -pedantic -Werror: the public header must stay
 * plain C99 so plugins can be written in C. */
#include "transport/plasma_transport.h"

typedef char plasma_tp_table_header_is_stable[offsetof(plasma_tp_v1_t, name) == 8 ? 1 : -1];

int plasma_transport_header_c99_check(void) {
  plasma_tp_properties_t props = {0};
  props.struct_size = (uint32_t)sizeof(props);
  return plasma_tp_default_strerror(PLASMA_TP_ERR_BAD_RKEY)[0] != '\0' &&
         PLASMA_TP_V1_MIN_SIZE <= sizeof(plasma_tp_v1_t) &&
         props.struct_size >= PLASMA_TP_PROPERTIES_MIN_SIZE;
}
