// The whole archive of one component is linked into this empty program against the component's
// declared dependencies only (cmake/Layering.cmake): an unresolved symbol means the component
// uses something it does not declare, e.g. a call up the layering. Never run.
int main() { return 0; }
