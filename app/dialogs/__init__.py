"""The editor's dialogs: import labels, batch export, variants, about."""
