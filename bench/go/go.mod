module goro.local/bench

go 1.19
