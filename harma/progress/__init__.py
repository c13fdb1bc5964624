"""What a running study tells its watchers: typed events (events), the live view's state built from them
(model, pure and tested), its rendering as text lines and a rich table (render), and the console that shows it
(console: redrawn in place on a terminal, one line per epoch otherwise, quiet on request).  No Ray here: the
Tune callback in harma.tune.events turns Tune's trial hooks into these events."""
