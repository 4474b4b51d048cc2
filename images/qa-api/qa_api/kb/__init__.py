"""Knowledge base: load documents, split, embed, index, and read a KB version dir."""
