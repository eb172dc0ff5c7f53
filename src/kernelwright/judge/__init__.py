"""The trusted core: compile, run, check and time candidates in sandboxed workers."""
