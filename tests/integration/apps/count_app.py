"""A minimal Faust app for the foundation test: consume a topic, count per key in a RocksDB table,
produce the running count to another topic. Run as a real worker: `python count_app.py worker`."""

import os

import faust

app = faust.App(
    os.environ["APP_ID"],
    broker=f"kafka://{os.environ['BOOTSTRAP']}",
    store="rocksdb://",
    datadir=os.environ["DATA_DIR"],
    web_host="127.0.0.1",
    web_port=int(os.environ["WEB_PORT"]),
    topic_partitions=3,
    topic_replication_factor=1,
    producer_acks=-1,
    consumer_auto_offset_reset="earliest",
)
source = app.topic(os.environ["SRC"], key_type=str, value_type=bytes, key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["DST"], key_type=str, value_type=bytes, key_serializer="raw", value_serializer="raw")
counts = app.Table("counts", default=int, partitions=3,
                   options={"driver": "rocksdict", "block_cache_size": 8 << 20, "write_buffer_size": 4 << 20})


@app.agent(source)
async def count(stream):  # type: ignore[no-untyped-def]
    async for key, _value in stream.items():
        counts[key] += 1
        await sink.send(key=key, value=str(counts[key]).encode())


if __name__ == "__main__":
    app.main()
