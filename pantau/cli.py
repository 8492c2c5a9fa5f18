"""The ``pantau`` command: engines, workers, the whole pipeline and SQL."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from clickhouse_connect.driver.exceptions import ClickHouseError

from pantau.config import CameraConfig, PantauConfig, RegionConfig
from pantau.config_loader import ConfigError, load_config
from pantau.config_watch import ConfigWatcher
from pantau.errors import UsageError
from pantau.logs import configure_logging

log = logging.getLogger("pantau.cli")

DEMO_VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
DEFAULT_CONFIG_NAME = "pantau.yaml"
EXAMPLE_CONFIG = Path(__file__).parent / "pantau.example.yaml"


def _demo_camera() -> CameraConfig:
    if not DEMO_VIDEO.exists():
        raise UsageError(
            f"demo footage {DEMO_VIDEO} is missing; install it with "
            "`apt-get install -y opencv-doc` (the setup in the README does this)"
        )
    return CameraConfig(
        id="demo-vtest",
        source_url=str(DEMO_VIDEO),
        region=RegionConfig(city="Jakarta", kecamatan="Gambir", kelurahan="Gambir"),
        sample_interval_s=0.5,
        loop=True,
    )


def load(args: argparse.Namespace) -> PantauConfig:
    """The configuration named by ``--config``, else ./pantau.yaml, else the
    embedded default with the demo camera."""
    path: Path | None = args.config
    if path is None and Path(DEFAULT_CONFIG_NAME).exists():
        path = Path(DEFAULT_CONFIG_NAME)
    config = load_config(path)
    if not config.cameras and path is None:
        config = config.model_copy(update={"cameras": [_demo_camera()]})
    return config


def _watcher(args: argparse.Namespace, config: PantauConfig) -> ConfigWatcher | None:
    """Follows the configuration file this process was started with, if any."""
    path: Path | None = args.config
    if path is None and Path(DEFAULT_CONFIG_NAME).exists():
        path = Path(DEFAULT_CONFIG_NAME)
    return (
        None if path is None else ConfigWatcher(path, interval_s=config.config_poll_s)
    )


def _config_args(args: argparse.Namespace) -> list[str]:
    return ["--config", str(args.config.resolve())] if args.config else []


def cmd_config_check(args: argparse.Namespace) -> int:
    from pantau.config_check import check_config_file

    problems = check_config_file(args.file)
    for line in problems:
        print(line)
    if problems:
        print(f"{args.file}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.file}: OK")
    return 0


def cmd_config_init(args: argparse.Namespace) -> int:
    target: Path = args.file
    if target.exists():
        raise UsageError(f"{target} already exists; remove it or choose another path")
    target.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"wrote {target}; edit the cameras, then run `pantau config check {target}`")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from infra.models.faces_fetch import fetch_blazeface, fetch_mask_classifier
    from infra.models.fetch import fetch_nanodet

    config = load(args)
    print(f"nanodet: {fetch_nanodet(config.cache_dir)}")
    print(f"blazeface: {fetch_blazeface(config.cache_dir)}")
    print(f"mask classifier: {fetch_mask_classifier(config.cache_dir)}")
    return 0


def cmd_infra(args: argparse.Namespace) -> int:
    from infra import embedded

    config = load(args)
    if args.action == "fetch":
        from infra.kafka_dist import ensure_kafka_libs
        from infra.web_assets import fetch_chartjs

        print(f"kafka jars: {ensure_kafka_libs(config.cache_dir)}")
        print(f"chart library: {fetch_chartjs(config.cache_dir)}")
        return 0
    if args.action == "up":
        result = embedded.up(
            config,
            kafka_port=args.kafka_port,
            kafka_controller_port=args.kafka_port + 1,
            clickhouse_port=args.clickhouse_port,
        )
        print(
            f"started={','.join(result.started) or '-'} "
            f"already_running={','.join(result.already_running) or '-'} "
            f"external={','.join(result.external) or '-'}"
        )
    elif args.action == "down":
        stopped = embedded.down(config)
        print(f"stopped={','.join(stopped) or 'nothing'}")
    for name, line in embedded.status(config).items():
        print(f"{name}: {line}")
    return 0


def _shard(text: str) -> tuple[int, int]:
    from producers.shard import parse_shard

    try:
        return parse_shard(text)
    except ValueError as error:
        raise UsageError(f"--shard: {error}") from None


def cmd_worker(args: argparse.Namespace) -> int:
    from infra.embedded import resolve_bootstrap, resolve_endpoints
    from pantau import services

    config = load(args)
    if args.role in ("windows", "alerts", "webhooks"):
        from pantau import alert_services

        # These talk to Kafka only: they need no ClickHouse.
        run = {
            "windows": services.run_windows,
            "alerts": alert_services.run_alerting,
            "webhooks": alert_services.run_webhooks,
        }[args.role]
        run(config, resolve_bootstrap(config), metrics_port=args.metrics_port)
        return 0
    endpoints = resolve_endpoints(config)
    watcher = _watcher(args, config)
    if args.role == "producers":
        services.run_producers(
            config,
            endpoints,
            camera_ids=args.camera or None,
            shard=_shard(args.shard),
            max_frames=args.max_frames,
            metrics_port=args.metrics_port,
            watcher=watcher,
        )
    elif args.role == "inference":
        services.run_inference(
            config, endpoints, metrics_port=args.metrics_port, watcher=watcher
        )
    elif args.role == "web":
        from pantau.web.service import run_web

        run_web(config, endpoints)
    else:
        services.run_sink(
            config, endpoints, metrics_port=args.metrics_port, watcher=watcher
        )
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from infra.embedded import resolve_endpoints
    from infra.topics_admin import ensure_topics

    config = load(args)
    partitions = ensure_topics(
        config.kafka, resolve_endpoints(config).bootstrap_servers
    )
    for name, count in sorted(partitions.items()):
        print(f"{name}: partitions={count}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from pantau.supervisor import UpOptions, run_up

    config = load(args)
    options = UpOptions(
        config_args=_config_args(args),
        duration_s=args.duration,
        max_frames=args.max_frames,
        progress_interval_s=args.progress_interval,
        drain_timeout_s=args.drain_timeout,
        log_level=args.log_level,
        kafka_port=args.kafka_port,
        clickhouse_port=args.clickhouse_port,
    )
    last = run_up(config, options)
    print(f"pipeline stopped: {last.line()}")
    return 0


def cmd_bench_inference(args: argparse.Namespace) -> int:
    from inference.bench import bench_inference
    from inference.detectors import build_analyzer

    config = load(args)
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    _figures, report = bench_inference(
        build_analyzer(config.pipeline, config.cache_dir),
        video=args.video,
        frame_count=args.frames,
        batch_sizes=sizes,
    )
    print(report)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from infra.embedded import kafka_for_benchmark
    from producers.bench import bench_producers

    config = load(args)
    with kafka_for_benchmark(config) as bootstrap:
        report = bench_producers(
            config,
            bootstrap,
            video=args.video,
            cameras=args.cameras,
            interval_s=args.interval,
            duration_s=args.duration,
        )
    print(report)
    return 0


def cmd_bench_windows(args: argparse.Namespace) -> int:
    from infra.embedded import kafka_for_benchmark
    from stream_apps.bench import bench_windows

    config = load(args)
    with kafka_for_benchmark(config) as bootstrap:
        report = bench_windows(
            config,
            _config_args(args),
            bootstrap,
            events=args.events,
            cameras=args.cameras,
        )
    print(report)
    return 0


def cmd_bench_sink(args: argparse.Namespace) -> int:
    import tempfile

    from infra.embedded import kafka_for_benchmark
    from stream_apps.sink_bench import bench_sink

    config = load(args)
    with (
        kafka_for_benchmark(config) as bootstrap,
        tempfile.TemporaryDirectory(prefix="pantau-bench-chdb-") as chdb_dir,
    ):
        report = bench_sink(
            config,
            bootstrap,
            args.clickhouse_url or f"chdb://{chdb_dir}",
            rows=args.rows,
            cameras=args.cameras,
        )
    print(report)
    return 0


def cmd_bench_city(args: argparse.Namespace) -> int:
    from infra.embedded import kafka_for_benchmark
    from stream_apps.city_bench import bench_city

    config = load(args)
    with kafka_for_benchmark(config) as bootstrap:
        report = bench_city(
            config,
            bootstrap,
            cameras=args.cameras,
            interval_s=args.interval,
            duration_s=args.duration,
            warmup_s=args.warmup,
            inference_workers=args.inference_workers,
            windows_workers=args.windows_workers,
            video=args.video,
        )
    print(report)
    return 0


def cmd_bench_soak(args: argparse.Namespace) -> int:
    from stream_apps.soak import bench_soak

    report = bench_soak(
        load(args),
        minutes=args.minutes,
        cameras=args.cameras,
        interval_s=args.interval,
        video=args.video,
        keep_dir=args.keep_dir,
    )
    print(report)
    return 0 if "lost: nothing" in report else 1


def cmd_detect(args: argparse.Namespace) -> int:
    from inference.detectors import build_analyzer
    from inference.local import LocalInputError, describe, detect_files

    config = load(args)
    analyzer = build_analyzer(config.pipeline, config.cache_dir)
    try:
        for label, event in detect_files(
            analyzer, args.inputs, every=args.every, annotate_dir=args.annotate
        ):
            print(describe(label, event, args.json), flush=True)
    except LocalInputError as error:
        raise UsageError(str(error)) from None
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import cv2

    from inference.calibrate import check_calibration
    from producers.sources import SourceUnavailableError, open_source

    config = load(args)
    try:
        camera = config.camera(args.camera)
    except KeyError as error:
        raise UsageError(str(error.args[0])) from None
    source = open_source(
        camera,
        stale_s=config.producers.stream_stale_s,
        snapshot_timeout_s=config.producers.snapshot_timeout_s,
    )
    try:
        source.open()
        frame = source.read(camera.sample_interval_s)
    except SourceUnavailableError as error:
        raise UsageError(str(error)) from None
    finally:
        source.close()
    if frame is None:
        raise UsageError(f"camera '{camera.id}' gave no frame")
    check = check_calibration(camera, frame)
    for fact in check.facts:
        print(fact)
    for problem in check.problems:
        print(f"problem: {problem}")
    out: Path = args.out or Path(f"calibration-{camera.id}.png")
    cv2.imwrite(str(out), check.picture)
    print(f"wrote {out}: calibration points numbered, 1 m ground grid drawn")
    return 1 if check.problems else 0


def cmd_events(args: argparse.Namespace) -> int:
    from infra.embedded import resolve_bootstrap
    from stream_apps.event_tools import replay, tail

    config = load(args)
    bootstrap = resolve_bootstrap(config)
    if args.action == "replay":
        count = replay(config.kafka, bootstrap, args.target)
        print(f"published {count} detection event(s) from {args.target}")
        return 0
    tail(
        config.kafka,
        bootstrap,
        str(args.target),
        sys.stdout,
        from_beginning=args.from_beginning,
        max_messages=args.max,
        idle_timeout_s=args.idle_timeout,
    )
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from infra.embedded import resolve_clickhouse_url
    from pantau.clickhouse import connect
    from pantau.table_output import format_json_lines, format_table, format_tsv
    from stream_apps.analytics import (
        QUERIES,
        QueryArgumentError,
        named_query,
        parse_flags,
    )

    if args.list:
        for query in QUERIES:
            usage = " ".join(f"--{p.name} VALUE" for p in query.parameters)
            print(f"{query.name} {usage}\n    {query.summary}")
        return 0
    if args.query is None:
        raise UsageError("give a query, or a query name from `pantau sql --list`")
    config = load(args)
    named = named_query(args.query)
    try:
        # argparse hands over everything after the query, --format included.
        flags = parse_flags(args.rest)
        output_format = flags.pop("format", args.format)
        if output_format not in ("table", "tsv", "json"):
            raise UsageError(
                f"--format: expected table, tsv or json, got {output_format!r}"
            )
        if named is None:
            if flags:
                raise UsageError(
                    "unexpected values after the query: "
                    f"{', '.join('--' + name for name in flags)}; values are taken "
                    "only by named queries (pantau sql --list)"
                )
            sql, parameters = args.query, None
        else:
            sql = named.render(config.clickhouse.database)
            parameters = named.bind(flags)
    except QueryArgumentError as error:
        raise UsageError(str(error)) from None
    client = connect(config.clickhouse, resolve_clickhouse_url(config))
    result = client.query(sql, parameters=parameters)
    formatter = {"table": format_table, "tsv": format_tsv, "json": format_json_lines}
    print(formatter[output_format](result.column_names, result.result_rows))
    return 0


def _print_analytics_user(args: argparse.Namespace) -> int:
    from stream_apps.analytics_user import AnalyticsUser, AnalyticsUserError

    config = load(args)
    password = os.environ.get(args.password_env)
    if not password:
        raise UsageError(
            f"the analytics user's password is read from ${args.password_env}, "
            "which is unset or empty; export it (at least 12 characters) or name "
            "another variable with --password-env"
        )
    try:
        user = AnalyticsUser.create(
            args.name,
            password,
            config.clickhouse.database,
            tuple(args.network or ["::/0"]),
        )
    except AnalyticsUserError as error:
        raise UsageError(str(error)) from None
    if args.format == "xml":
        print(user.users_xml(), end="")
    else:
        print(";\n".join(user.access_sql()) + ";")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from infra.embedded import resolve_clickhouse_url
    from pantau.clickhouse import connect
    from pantau.table_output import format_table
    from stream_apps.camera_dimension import sync_cameras
    from stream_apps.clickhouse_migrations import migrate, status
    from stream_apps.clickhouse_tables import apply_retention

    if args.action == "analytics-user":
        return _print_analytics_user(args)
    config = load(args)
    client = connect(config.clickhouse, resolve_clickhouse_url(config))
    database = config.clickhouse.database
    if args.action == "migrate":
        applied = migrate(client, database)
        apply_retention(client, database, config.clickhouse.detections_ttl_days)
        cameras = sync_cameras(client, database, config.cameras)
        print(
            f"migrations applied: {len(applied)} database={database} "
            f"camera rows written: {cameras}"
        )
    rows = [
        [
            f"V{state.migration.version:04d}",
            state.migration.name,
            state.state,
            "" if state.applied_at is None else str(state.applied_at),
        ]
        for state in status(client, database)
    ]
    print(format_table(["version", "name", "state", "applied_at"], rows))
    return 0


def _add_ports(parser: argparse.ArgumentParser) -> None:
    from infra.embedded import DEFAULT_CLICKHOUSE_HTTP_PORT, DEFAULT_KAFKA_PORT

    parser.add_argument(
        "--kafka-port",
        type=int,
        default=int(os.environ.get("PANTAU_KAFKA_PORT", DEFAULT_KAFKA_PORT)),
        help="embedded broker port on 127.0.0.1; the controller takes the next one "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--clickhouse-port",
        type=int,
        default=int(
            os.environ.get("PANTAU_CLICKHOUSE_PORT", DEFAULT_CLICKHOUSE_HTTP_PORT)
        ),
        help="embedded ClickHouse HTTP port on 127.0.0.1 (default %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pantau",
        description="Live public-health and mobility analytics from CCTV cameras.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help=f"YAML configuration (default: ./{DEFAULT_CONFIG_NAME} if present, "
        "else the embedded default with the demo camera)",
    )
    parser.add_argument("--log-level", default="INFO", help="default %(default)s")
    commands = parser.add_subparsers(dest="command", required=True)

    config_cmd = commands.add_parser("config", help="validate configuration files")
    config_sub = config_cmd.add_subparsers(dest="action", required=True)
    check = config_sub.add_parser("check", help="print every problem with its line")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_config_check)
    init = config_sub.add_parser("init", help="write the commented example file")
    init.add_argument("file", type=Path, nargs="?", default=Path(DEFAULT_CONFIG_NAME))
    init.set_defaults(func=cmd_config_init)

    infra_cmd = commands.add_parser("infra", help="embedded Kafka and ClickHouse")
    infra_cmd.add_argument("action", choices=["up", "down", "status", "fetch"])
    _add_ports(infra_cmd)
    infra_cmd.set_defaults(func=cmd_infra)

    models = commands.add_parser("models", help="model weights")
    models.add_argument("action", choices=["fetch"])
    models.set_defaults(func=cmd_models)

    topics = commands.add_parser("topics", help="create the topic catalogue")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(func=cmd_topics)

    for role, summary in (
        ("producers", "sample cameras and publish frames"),
        ("inference", "detect people in frames and publish detection events"),
        ("windows", "keep 15-minute windows per camera (faust worker)"),
        ("sink", "land windows, detections, alerts and camera status in ClickHouse"),
        ("alerts", "judge the alert rules and publish alert lifecycle messages"),
        ("webhooks", "POST every alert to the webhook subscribers, signed"),
        ("web", "serve the live monitoring page on loopback"),
    ):
        worker = commands.add_parser(role, help=summary)
        worker.add_argument("action", choices=["run"])
        worker.add_argument("--metrics-port", type=int, help="serve Prometheus metrics")
        if role == "producers":
            worker.add_argument("--camera", action="append", help="only this camera id")
            worker.add_argument("--max-frames", type=int, help="stop after N frames")
            worker.add_argument(
                "--shard",
                default="0/1",
                help="sample only shard I of N (I/N, cameras split by id hash)",
            )
        worker.set_defaults(func=cmd_worker, role=role)

    up = commands.add_parser("up", help="run engines and every worker on this machine")
    up.add_argument("--duration", type=float, help="stop after SECONDS")
    up.add_argument("--max-frames", type=int, help="stop after N frames per camera")
    up.add_argument("--progress-interval", type=float, default=5.0)
    up.add_argument("--drain-timeout", type=float, default=120.0)
    _add_ports(up)
    up.set_defaults(func=cmd_up)

    detect = commands.add_parser(
        "detect", help="run the inference analysis on local images or videos"
    )
    detect.add_argument("inputs", type=Path, nargs="+", metavar="IMAGE_OR_VIDEO")
    detect.add_argument("--json", action="store_true", help="one JSON event per line")
    detect.add_argument(
        "--every", type=int, default=25, help="every Nth frame of a video"
    )
    detect.add_argument("--annotate", type=Path, metavar="DIR")
    detect.set_defaults(func=cmd_detect)

    calibrate = commands.add_parser(
        "calibrate", help="check a camera's ground calibration on a live frame"
    )
    calibrate.add_argument("camera")
    calibrate.add_argument("--out", type=Path, help="picture to write (PNG)")
    calibrate.set_defaults(func=cmd_calibrate)

    events = commands.add_parser(
        "events", help="replay detection events from JSON lines; tail any topic"
    )
    events_sub = events.add_subparsers(dest="action", required=True)
    replay = events_sub.add_parser(
        "replay", help="publish detection events given as JSON lines"
    )
    replay.add_argument("target", type=Path, metavar="FILE.jsonl")
    replay.set_defaults(func=cmd_events)
    tail = events_sub.add_parser("tail", help="print decoded messages of a topic")
    tail.add_argument("target", metavar="TOPIC")
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", type=int, help="stop after N messages")
    tail.add_argument(
        "--idle-timeout", type=float, help="stop after SECONDS without a message"
    )
    tail.set_defaults(func=cmd_events)

    bench = commands.add_parser("bench", help="measure throughput against a baseline")
    bench_sub = bench.add_subparsers(dest="target", required=True)
    bench_producers = bench_sub.add_parser(
        "producers", help="simulated cameras through the samplers vs a bare producer"
    )
    bench_producers.add_argument("--cameras", type=int, default=200)
    bench_producers.add_argument("--interval", type=float, default=1.0)
    bench_producers.add_argument("--duration", type=float, default=20.0)
    bench_producers.add_argument("--video", type=Path, default=DEMO_VIDEO)
    bench_producers.set_defaults(func=cmd_bench)
    bench_inference = bench_sub.add_parser(
        "inference", help="the inference path vs the bare model, per batch size"
    )
    bench_inference.add_argument("--frames", type=int, default=64)
    bench_inference.add_argument("--batch-sizes", default="1,8,32")
    bench_inference.add_argument("--video", type=Path, default=DEMO_VIDEO)
    bench_inference.set_defaults(func=cmd_bench_inference)
    bench_windows = bench_sub.add_parser(
        "windows",
        help="detection events/s through one windows worker vs a bare consumer",
    )
    bench_windows.add_argument("--events", type=int, default=30_000)
    bench_windows.add_argument("--cameras", type=int, default=300)
    bench_windows.set_defaults(func=cmd_bench_windows)
    bench_sink = bench_sub.add_parser(
        "sink",
        help="detection events from Kafka into ClickHouse through the sink, "
        "against bare Arrow inserts of the same rows",
    )
    bench_sink.add_argument("--rows", type=int, default=100_000)
    bench_sink.add_argument("--cameras", type=int, default=300)
    bench_sink.add_argument(
        "--clickhouse-url",
        help="ClickHouse to measure (default: a temporary in-process chDB); a "
        "database bench_sink_* is created there and dropped",
    )
    bench_sink.set_defaults(func=cmd_bench_sink)
    bench_city = bench_sub.add_parser(
        "city",
        help="simulated city cameras through broker, stream apps and ClickHouse, "
        "detections replayed; frames/s, lag over time, capture-to-row latency",
    )
    bench_city.add_argument("--cameras", type=int, default=1500)
    bench_city.add_argument(
        "--interval", type=float, default=10.0, help="seconds between frames"
    )
    bench_city.add_argument("--duration", type=float, default=120.0)
    bench_city.add_argument("--warmup", type=float, default=20.0)
    bench_city.add_argument("--inference-workers", type=int, default=1)
    bench_city.add_argument("--windows-workers", type=int, default=1)
    bench_city.add_argument("--video", type=Path, default=DEMO_VIDEO)
    bench_city.set_defaults(func=cmd_bench_city)
    bench_soak = bench_sub.add_parser(
        "soak",
        help="the embedded pipeline on real footage under injected faults; "
        "ClickHouse must end equal to an undisturbed run",
    )
    bench_soak.add_argument("--minutes", type=float, default=10.0)
    bench_soak.add_argument("--cameras", type=int, default=2)
    bench_soak.add_argument(
        "--interval", type=float, default=0.5, help="seconds between frames"
    )
    bench_soak.add_argument("--video", type=Path, default=DEMO_VIDEO)
    bench_soak.add_argument(
        "--keep-dir",
        type=Path,
        help="keep the run's engines' data and the workers' logs here",
    )
    bench_soak.set_defaults(func=cmd_bench_soak)

    db = commands.add_parser(
        "db", help="ClickHouse schema versions and the analytics user"
    )
    db.add_argument(
        "action",
        choices=["migrate", "status", "analytics-user"],
        help="migrate: apply pending migrations and write the camera dimension; "
        "status: list the migrations; analytics-user: print a read-only user "
        "for a ClickHouse server",
    )
    db.add_argument(
        "--name", default="analyst", help="analytics user name (default %(default)s)"
    )
    db.add_argument(
        "--password-env",
        default="PANTAU_ANALYTICS_PASSWORD",
        help="environment variable holding the analytics user's password "
        "(default %(default)s); only its SHA-256 is printed",
    )
    db.add_argument(
        "--network",
        action="append",
        help="address or CIDR the analytics user may connect from; repeat for "
        "several (default ::/0, any)",
    )
    db.add_argument(
        "--format",
        choices=["xml", "sql"],
        default="xml",
        help="xml: a users.d file; sql: statements for SQL access control "
        "(default %(default)s)",
    )
    db.set_defaults(func=cmd_db)

    sql = commands.add_parser(
        "sql",
        help="run a query, or a named analytics query, against ClickHouse",
    )
    sql.add_argument("query", nargs="?", help="SQL text, or a query name from --list")
    sql.add_argument("--format", choices=["table", "tsv", "json"], default="table")
    sql.add_argument("--list", action="store_true", help="list the named queries")
    sql.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        help="a named query's values: --name VALUE ...",
    )
    sql.set_defaults(func=cmd_sql)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pantau`` console script."""
    from infra.embedded import EngineNotRunningError
    from stream_apps.clickhouse_migrations import MigrationError

    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        code: int = args.func(args)
    except (ConfigError, UsageError, EngineNotRunningError, MigrationError) as error:
        print(f"pantau: {error}", file=sys.stderr)
        return 2
    except ClickHouseError as error:
        print(f"pantau: ClickHouse error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
