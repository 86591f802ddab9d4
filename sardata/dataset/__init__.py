"""Operations on built datasets, above the shard writer and the loaders: merge, relocate, verify/diff, inspect,
export (Croissant, HF). They read and write through ``sardata.manifest`` (tables, card), ``sardata.shards``
(tar members) and ``sardata.stream`` (checked tables, the shard cache, dataset location); nothing below imports
them."""
