// libclang is called with blittable types only (pointers, integers, CXCursor and friends by value), so the
// runtime's marshalling layer has nothing to do; disabling it makes every [LibraryImport] a direct call.
[assembly: System.Runtime.CompilerServices.DisableRuntimeMarshalling]
