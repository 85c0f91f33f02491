"""One parser module per format; each recognises its inputs by sniffing the bytes, never by the channel."""
