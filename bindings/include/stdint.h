/* A hermetic <stdint.h> for the binding generator, found through -nostdinc -isystem bindings/include.
 *
 * tandem.h includes only <stdint.h>. Taking it from the machine (glibc's /usr/include, or clang's resource
 * directory, which the NuGet libclang does not ship) would make the generated bindings depend on what happens
 * to be installed. The fixed-width types are instead defined from the macros clang predefines for the target
 * given in bindings.json (__INT32_TYPE__ and friends), so they are exactly what a real <stdint.h> gives on
 * that target, and every machine generates the same file.
 *
 * Only for parsing: nothing is ever compiled against this file. */
#ifndef TANDEM_BINDINGS_STDINT_H
#define TANDEM_BINDINGS_STDINT_H

typedef __INT8_TYPE__ int8_t;
typedef __INT16_TYPE__ int16_t;
typedef __INT32_TYPE__ int32_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
typedef __INTPTR_TYPE__ intptr_t;
typedef __UINTPTR_TYPE__ uintptr_t;

#define INT8_MIN (-__INT8_MAX__ - 1)
#define INT16_MIN (-__INT16_MAX__ - 1)
#define INT32_MIN (-__INT32_MAX__ - 1)
#define INT64_MIN (-__INT64_MAX__ - 1)
#define INT8_MAX __INT8_MAX__
#define INT16_MAX __INT16_MAX__
#define INT32_MAX __INT32_MAX__
#define INT64_MAX __INT64_MAX__
#define UINT8_MAX __UINT8_MAX__
#define UINT16_MAX __UINT16_MAX__
#define UINT32_MAX __UINT32_MAX__
#define UINT64_MAX __UINT64_MAX__

#endif
