"""One page per tab, plus the modal screens (help, confirm, forms, diff)."""
