"""Watch: keep targets up to date as files change (``gristmill watch``, the app's Watch).

- ``scope``: what to watch for one loaded workflow (the folders of the targets' inputs,
  of every glob the loader listed, of the workflow file and every file it read) and what
  a changed path means (reload the workflow, rescan, or nothing: outputs and editor
  temporary files never count). Pure Python.
- ``watcher``: ``FileWatcher``, file-system events through watchfiles (the Rust
  ``notify`` crate: inotify, FSEvents, ReadDirectoryChangesW), one watch per folder, and
  a quiet-period debounce of its own.
- ``loop``: ``Watch``, what the CLI's ``watch`` runs: a run at the start, then, on each
  batch of changes, a reload if the workflow's files changed and an ordinary run of
  what is stale; a change to the inputs of a running task restarts only that task.
"""
