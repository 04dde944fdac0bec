//! keepalived.conf: lexer, parser, typed model, validation.
