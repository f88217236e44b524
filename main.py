"""The operator console: ``python main.py --demo`` (training) or ``python main.py --broker URL
--caseload FILE [--db FILE]`` (live). Prints structured JSON log lines to stdout."""
from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(prog="main.py", description="GPS electronic-monitoring operator console")
    p.add_argument("--demo", action="store_true", help="training mode: simulated feed, its own store, no broker")
    p.add_argument("--broker", help="MQTT broker URL of the live feed (live mode)")
    p.add_argument("--broker-ca", metavar="FILE", help="CA file for an mqtts:// broker (as the monitor's --ca)")
    p.add_argument("--broker-cert", metavar="FILE", help="this console's client certificate for mqtts:// (--cert)")
    p.add_argument("--broker-key", metavar="FILE", help="that certificate's private key (--key)")
    p.add_argument("--broker-username", metavar="NAME", help="this console's broker identity (--username)")
    p.add_argument("--broker-password-file", metavar="FILE",
                   help="file whose first line is the broker password (or set MONITORAPP_MQTT_PASSWORD); "
                        "--password-file is the sign-in password")
    p.add_argument("--caseload", help="caseload file (live mode)")
    p.add_argument("--db", help="SQLite store file, or the centre's record postgresql://host/db (live: the "
                                "console is then a client of the centre; sign in with your own login)")
    p.add_argument("--operator", help="operator name for the acknowledgement log")
    p.add_argument("--speed", type=int, choices=(1, 10, 60), help="training speed")
    p.add_argument("--scenario", help="training: a trainers' preset (exclusion_breach_camden, exclusion_breach_hackney, "
                                      "strap_cut, curfew_breach, feed_outage, alert_flood)")
    p.add_argument("--offenders", type=int, default=100, help="size of the demo caseload (training)")
    p.add_argument("--quit-after", type=float, metavar="SECONDS", help="quit after this many seconds (tests)")
    p.add_argument("--screenshot", metavar="PNG", help="with --quit-after: save the window to this file first")
    p.add_argument("--user", help="sign in as this user (with --password-file) instead of the dialog")
    p.add_argument("--password-file", help="file whose first line is the password (with --user)")
    p.add_argument("--sign-in", action="store_true",
                   help="training: ask for sign-in even on a training store without accounts")
    p.add_argument("--self-check", action="store_true", help="check this installation and exit (for IT)")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    return p.parse_args(argv)


NO_DISPLAY = ("main.py: no display: set DISPLAY (an X server) or WAYLAND_DISPLAY, "
              "or run with QT_QPA_PLATFORM=offscreen")


def lacks_display(env=os.environ, platform: str = sys.platform) -> bool:
    """True where Qt would abort on start: on Linux, the default (xcb) platform with neither an
    X server nor a Wayland compositor named in the environment (an SSH session, a service)."""
    qpa = env.get("QT_QPA_PLATFORM", "")
    return (platform.startswith("linux") and (not qpa or qpa.startswith("xcb"))
            and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from ui.selfcheck import handle_cli
    code = handle_cli(argv)          # --self-check and --version
    if code is not None:
        return code
    args = parse_args(argv)
    if args.scenario and not args.demo:
        print("main.py: --scenario is for training mode; add --demo", file=sys.stderr)
        return 2
    if args.demo and args.broker:
        print("main.py: training mode (--demo) cannot use a live broker; drop --broker", file=sys.stderr)
        return 2
    broker_opts = {k: getattr(args, k) for k in ("broker_ca", "broker_cert", "broker_key", "broker_username",
                                                 "broker_password_file")}
    if args.demo and any(broker_opts.values()):
        print("main.py: training mode (--demo) uses no broker; drop the --broker-* options", file=sys.stderr)
        return 2
    centre = bool(args.db) and args.db.startswith(("postgresql://", "postgres://"))
    if centre and args.demo:
        print("main.py: training mode (--demo) has its own store; the centre's record is live", file=sys.stderr)
        return 2
    if args.db and not centre:     # a store of the other mode, empty, or not ours: say so now
        from localdb.schema import StoreError, check_store_file
        try:
            check_store_file(args.db, "training" if args.demo else "live")
        except StoreError as e:
            print(f"main.py: {e}", file=sys.stderr)
            return 2
    if lacks_display():            # before Qt: its xcb plugin would abort with a page of advice
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
        if "--no-sandbox" not in flags:    # Chromium refuses to run sandboxed as root
            os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --no-sandbox").strip()
    import ui.map.view  # noqa: F401  (registers the map's URL schemes before the QApplication)
    from ui.app import Options, run
    return run(Options(demo=args.demo, broker=args.broker, caseload=args.caseload, db=args.db,
                       operator=args.operator, speed=args.speed, offenders=args.offenders, scenario=args.scenario,
                       quit_after=args.quit_after, screenshot=args.screenshot,
                       user=args.user, password_file=args.password_file,
                       force_sign_in=args.sign_in, **broker_opts))


if __name__ == "__main__":
    sys.exit(main())
