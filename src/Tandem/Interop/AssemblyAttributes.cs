// NativeMethods.g.cs declares blittable signatures only (pointers, integers, enums, blittable structs,
// function pointers; flags are bytes, never bool), so the runtime marshalling layer has nothing to do.
// Disabling it turns every [LibraryImport] into a direct call and makes the compiler reject any signature
// that would need marshalling, instead of silently copying or converting at run time.
[assembly: System.Runtime.CompilerServices.DisableRuntimeMarshalling]
