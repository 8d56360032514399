"""`edgeadapt web` and `edgeadapt serve-web`: a bundle as a static site that answers offline in a phone's browser."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeadapt.cli.common import WorkdirOption, console

WEB_HELP = """Write a static site that answers questions offline in a browser (phones included) from a bundle.

The site (default: <bundle>-web next to the bundle) holds index.html, its scripts, onnxruntime-web's WASM files (from web/node_modules, installed with `npm ci` from the lockfile when absent) and the bundle's model files: nothing is fetched from elsewhere at run time, and after the first visit a service worker keeps it offline. For a phone, export the bundle with the phone options first, or use `edgeadapt export --web`. See docs/web.md.

Examples:

  edgeadapt export --trim-vocab --adapter-dtype fp16 && edgeadapt web

  edgeadapt web --bundle bundles/yo --out site/yo

  edgeadapt serve-web          # then open the printed address on the phone
"""

SERVE_HELP = """Serve a site written by `edgeadapt web` on the local network: a phone on the same Wi-Fi opens the printed address.

Service workers (offline after the first visit) need a secure origin: http://localhost counts, a LAN address over plain http does not (the open tab still answers offline). docs/web.md shows how to keep the page on a phone (adb reverse, https).

Examples:

  edgeadapt serve-web

  edgeadapt serve-web --site site/yo --port 8080
"""


def build_and_report(bundle: Path, out: Path | None) -> Path:
    from edgeadapt.export.web import build_site

    with console.status("writing the site..."):
        site = build_site(bundle, out)
    console.print(f"site {site.path}: {site.size / 1e6:.1f} MB, languages {', '.join(site.languages)}")
    typer.echo(str(site.path))
    return site.path


def web(
    bundle: Path | None = typer.Option(None, "--bundle", "-b", help="Bundle directory (default: <workdir>/export)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Site directory (default: <bundle>-web)."),
    workdir: Path | None = WorkdirOption,
) -> None:
    from edgeadapt.paths import export_dir

    build_and_report(bundle or export_dir(workdir), out)


def serve_web(
    site: Path | None = typer.Option(None, "--site", "-s", help="Site directory (default: <workdir>/export-web)."),
    host: str = typer.Option("0.0.0.0", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", "-p", help="Port."),
    workdir: Path | None = WorkdirOption,
) -> None:
    from edgeadapt.export.web import default_site_dir, local_addresses, make_server
    from edgeadapt.paths import export_dir

    folder = site or default_site_dir(export_dir(workdir))
    server = make_server(folder, host, port)
    bound = server.server_address[1]
    typer.echo(f"serving {folder}")
    typer.echo(f"  on this computer: http://localhost:{bound}/")
    if host in ("0.0.0.0", ""):
        for address in local_addresses():
            typer.echo(f"  on a phone on the same network: http://{address}:{bound}/")
    typer.echo("Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


web.__doc__ = WEB_HELP
serve_web.__doc__ = SERVE_HELP
