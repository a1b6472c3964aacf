"""Dutch for the hints and messages m365audit writes beside Graph errors; Graph's own words stay as Graph sent them.

The snapshot keeps every hint in English (it is evidence and stays as written); a Dutch report shows it through
``dutch``. A text this table does not know is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable

EXACT: dict[str, str] = {
    "the audit app lacks a permission": "de audit-app mist een machtiging",
    "the token was refused: check AZURE_TENANT_ID, the app registration and its admin consent":
        "het token werd geweigerd: controleer AZURE_TENANT_ID, de app-registratie en de beheerderstoestemming",
    "Graph does not know this resource here: the feature may not be licensed or enabled":
        "Graph kent deze resource hier niet: de functie is misschien niet gelicenseerd of niet ingeschakeld",
    "Graph kept throttling after retries: run again later, or lower --concurrency":
        "Graph bleef afremmen (throttling), ook na nieuwe pogingen: draai later opnieuw of verlaag --concurrency",
    "the replayed recording has no answer for this request":
        "de afgespeelde opname heeft geen antwoord op dit verzoek",
    "Microsoft Graph had a service problem: run again later":
        "Microsoft Graph had een storing: draai later opnieuw",
    "see the Graph error code and message": "zie de foutcode en melding van Graph",
    "run again later; raise --timeout if this source is slow":
        "draai later opnieuw; verhoog --timeout als deze bron traag is",
    "check the network path to graph.microsoft.com (proxy, firewall, DNS)":
        "controleer de netwerkweg naar graph.microsoft.com (proxy, firewall, DNS)",
    "run again; if it persists, keep the run folder as evidence for support":
        "draai opnieuw; blijft het, bewaar dan de runmap als bewijs voor support",
    "a nextLink or URL pointed away from Microsoft Graph; keep the evidence":
        "een nextLink of URL wees weg van Microsoft Graph; bewaar het bewijs",
    "run again; an empty success is not evidence": "draai opnieuw; een leeg succesantwoord is geen bewijs",
    "the page is not a Graph collection": "de pagina is geen Graph-verzameling",
    "Graph paging misbehaved; run again": "het bladeren door Graph ging mis; draai opnieuw",
    "check the report URL and that the response was not an error page":
        "controleer de rapport-URL en of het antwoord geen foutpagina was",
    "run the audit again": "draai de audit opnieuw",
    "raise --audit-wait; Purview audit searches can take several minutes":
        "verhoog --audit-wait; een Purview-auditzoekopdracht kan enkele minuten duren",
    "keep the run folder: the exchanges show what Graph sent":
        "bewaar de runmap: de exchanges laten zien wat Graph stuurde",
    "the snapshot has no such source; run a full audit": "de snapshot heeft deze bron niet; draai een volledige audit",
    "not collected in this run": "niet verzameld in deze run",
}

_Sub = Callable[[re.Match[str]], str]
PATTERNS: list[tuple[re.Pattern[str], _Sub]] = [
    (re.compile(r"grant the application permission (.+?) to the audit app and give admin consent(.*)", re.S),
     lambda m: f"geef de audit-app de applicatiemachtiging {m[1].replace(' or ', ' of ')} en verleen "
               f"beheerderstoestemming (admin consent)" + (
                   " (`m365audit permissions` noemt ze allemaal, met az CLI-opdrachten)" if m[2].strip() else "")),
    (re.compile(r"fix (.+) first"), lambda m: f"los eerst {m[1]} op"),
    (re.compile(r"not read: it needs (.+), which could not be read"),
     lambda m: f"niet gelezen: deze bron heeft {m[1]} nodig, en die kon niet worden gelezen"),
    (re.compile(r"not read: the token lacks the application permission (\S+) \(checked before calling Graph\)"),
     lambda m: f"niet gelezen: het token mist de applicatiemachtiging {m[1]} (gecontroleerd vóór de Graph-aanroep)"),
]


def dutch(text: str | None) -> str:
    """The Dutch of one of our hints or messages; anything else (Graph's own words) as it is."""
    if not text:
        return text or ""
    if text in EXACT:
        return EXACT[text]
    for pattern, replace in PATTERNS:
        match = pattern.fullmatch(text)
        if match is not None:
            return replace(match)
    return text


def in_lang(text: str | None, lang: str) -> str:
    """The text for a report in ``lang``: Dutch through the table, English as written."""
    return dutch(text) if lang == "nl" else text or ""
