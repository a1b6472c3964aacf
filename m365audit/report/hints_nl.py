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
        "draai opnieuw; blijft het, bewaar dan de bewijsmap voor support",
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
        "bewaar de bewijsmap: de map exchanges laat zien wat Graph stuurde",
    "the snapshot has no such source; run a full audit": "de snapshot heeft deze bron niet; draai een volledige audit",
    "not collected in this run": "niet verzameld in deze controle",
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


STATUS_NL: dict[int, str] = {
    400: "Graph begreep het verzoek niet (HTTP 400)",
    401: "het token werd geweigerd (HTTP 401): de aanmelding van de audit-app klopt niet",
    403: "geen toegang (HTTP 403): de audit-app mist een API-machtiging of een rol",
    404: "Graph kent deze resource hier niet (HTTP 404): de functie is misschien niet gelicenseerd of niet "
         "ingeschakeld",
    409: "Graph meldde een conflict (HTTP 409)",
    429: "Graph remde de verzoeken af (HTTP 429, throttling)",
    500: "storing bij Microsoft Graph (HTTP 500)",
    502: "storing bij Microsoft Graph (HTTP 502)",
    503: "Microsoft Graph was tijdelijk niet beschikbaar (HTTP 503)",
    504: "Microsoft Graph antwoordde niet op tijd (HTTP 504)",
    599: "de afgespeelde opname heeft geen antwoord op dit verzoek (599)",
}
"""What a Graph HTTP status means, in Dutch; the report quotes Graph's own text beside it."""

CODE_NL: dict[str, str] = {
    "Authorization_RequestDenied": "onvoldoende rechten",
    "AmbiguousJson": "dubbelzinnige JSON: lezers kunnen verschillende waarden zien",
    "TooDeep": "JSON te diep genest",
    "Forbidden": "geen toegang",
    "AccessDenied": "geen toegang",
    "accessDenied": "geen toegang",
    "InvalidAuthenticationToken": "ongeldig token",
    "Request_ResourceNotFound": "resource niet gevonden",
    "ResourceNotFound": "resource niet gevonden",
    "NotFound": "niet gevonden",
    "BadRequest": "ongeldig verzoek",
    "TooManyRequests": "te veel verzoeken",
    "serviceNotAvailable": "dienst tijdelijk niet beschikbaar",
    "ServiceUnavailable": "dienst tijdelijk niet beschikbaar",
    "generalException": "algemene storing bij Graph",
    "UnknownError": "onbekende storing bij Graph",
    "NotRecorded": "niet opgenomen",
    "MalformedBody": "het antwoord is geen bruikbare JSON",
    "EmptyBody": "leeg antwoord",
    "PagingLoop": "het bladeren liep in een kring",
    "ForeignHost": "verwijzing buiten Microsoft Graph",
    "NetworkError": "netwerkprobleem",
    "Timeout": "geen antwoord binnen de wachttijd",
    "UnexpectedData": "onverwachte gegevens",
    "PermissionMissing": "API-machtiging ontbreekt",
    "DependencyFailed": "een bron waarvan deze afhangt kon niet worden gelezen",
}
"""Graph's and our error codes in Dutch; the code itself is shown too (it is what support asks for)."""

_GRAPH_ANSWERED = re.compile(r"Graph answered (\d{3})(?: (\S+))?: (.*)", re.S)
_OWN: list[tuple[re.Pattern[str], str, int | None]] = [
    (re.compile(r"Graph answered with an empty body"), "Graph stuurde een leeg antwoord", None),
    (re.compile(r"Graph sent a body the audit cannot read: (.*)", re.S),
     "Graph stuurde een antwoord dat de audit niet betrouwbaar kan lezen", 1),
    (re.compile(r"Graph sent a body that is not valid JSON \(truncated\?\): (.*)", re.S),
     "Graph stuurde een antwoord dat geen geldige JSON is (afgekapt?)", 1),
    (re.compile(r"no answer from Graph in time \((\w+)\)"), "geen antwoord van Graph binnen de wachttijd", 1),
    (re.compile(r"network error: (.*)", re.S), "netwerkprobleem op weg naar Microsoft Graph", 1),
    (re.compile(r"refusing to send the audit's token to (.*)", re.S),
     "het token van de audit is niet verstuurd naar een adres buiten Microsoft Graph", 1),
    (re.compile(r"expected a JSON object, got (\w+)"), "Graph stuurde geen JSON-object", 1),
    (re.compile(r"a page of the collection has no 'value' list"),
     "een pagina van de verzameling heeft geen lijst 'value'", None),
    (re.compile(r"@odata.nextLink is not a string"), "de verwijzing naar de volgende pagina is geen tekst", None),
    (re.compile(r"@odata.nextLink points back to a page already read"),
     "de verwijzing naar de volgende pagina wijst terug naar een pagina die al is gelezen", None),
    (re.compile(r"Graph data had an unexpected shape \((.*)\)", re.S),
     "de gegevens van Graph hadden een onverwachte vorm", 1),
    (re.compile(r"audit query (\S+) ended '([^']*)'"), "de auditzoekopdracht in Purview is niet goed afgerond", 0),
]


def graph_error(message: str | None, lang: str) -> tuple[str, str | None]:
    """(what m365audit says about an error, Graph's own text to quote beside it or None).

    English reports show the message as written. A Dutch report explains the HTTP status and error code in
    Dutch and quotes Graph's text unchanged: it is evidence.
    """
    text = message or ""
    if lang != "nl":
        return text, None
    match = _GRAPH_ANSWERED.fullmatch(text)
    if match is not None:
        status, code, said = int(match[1]), match[2], match[3]
        what = STATUS_NL.get(status, f"Graph antwoordde met HTTP-status {status}")
        if code:
            what += f"; foutcode {code}" + (f" ({CODE_NL[code]})" if code in CODE_NL else "")
        return what, said
    for pattern, nl, group in _OWN:
        found = pattern.fullmatch(text)
        if found is not None:
            return nl, (found[group] if group is not None else None)
    translated = dutch(text)
    return translated, None


DETAIL_NL: list[tuple[re.Pattern[str], str]] = [(re.compile(p), nl) for p, nl in (
    (r"admin consent for all users", "beheerderstoestemming voor alle gebruikers"),
    (r"user consent by 1 user\b", "gebruikerstoestemming door 1 gebruiker"),
    (r"user consent by (\d+) users", r"gebruikerstoestemming door \1 gebruikers"),
    (r"application permission", "applicatiemachtiging"),
    (r"recognised as ", "herkend als "),
    (r"not on the approved-apps list", "staat niet op de lijst van goedgekeurde apps"),
    (r"approval expired: review was due ", "goedkeuring verlopen: herbeoordeling was uiterlijk "),
    (r"; latest ", "; laatste "),
    (r"^excluded from ", "uitgezonderd in "),
    (r"no enabled Conditional Access policy blocks it for all users",
     "geen ingeschakeld beleid voor voorwaardelijke toegang blokkeert dit voor alle gebruikers"),
    (r"^not for all users$", "niet voor alle gebruikers"),
    (r"^report-only$", "alleen rapporteren"),
    (r"team and chat owners may consent to apps for their team/chat",
     "eigenaren van teams en chats mogen apps toestemming geven voor hun team of chat"),
    (r"users may let Teams apps read their own chats \(resource-specific consent\)",
     "gebruikers mogen Teams-apps hun eigen chats laten lezen (resourcespecifieke toestemming)"),
    (r"users may consent to apps for themselves under this policy",
     "gebruikers mogen onder dit beleid zelf apps toestemming geven"),
    (r"^type: ", "soort: "), (r" - available to: ", " - beschikbaar voor: "),
    (r" - deployed to: ", " - uitgerold naar: "),
    (r" - publisher: ", " - uitgever: "), (r"; tenant policy none$", "; tenantbeleid: geen"),
    (r"(?<=: )some\b", "sommigen"), (r"(?<=: )none\b", "niemand"),
    (r": review and classify in a catalog", ": beoordeel dit en neem het op in een catalogus"),
    (r"not configured", "niet geconfigureerd"), (r"^value ", "waarde "), (r"; tenant policy ", "; tenantbeleid: "),
    (r"\(grace period\)", "(respijtperiode)"), (r"; account disabled", "; account uitgeschakeld"),
    (r"^prepaid units: (\d+) enabled, (\d+) warning; consumed: (\d+); Copilot plans: ",
     r"vooruitbetaalde licenties: \1 actief, \2 in waarschuwing; in gebruik: \3; Copilot-plannen: "),
    (r"^last activity ", "laatste activiteit "),
    (r"user name concealed \(hashed\) in the report", "gebruikersnaam verborgen (gehasht) in het rapport"),
    (r"\(not compliant\)", "(voldoet niet)"), (r"\(compliant\)", "(voldoet)"),
    (r"\(meaning unconfirmed\)", "(betekenis niet bevestigd)"),
    (r"\(does not decide this rule\)", "(beslist niet over deze regel)"),
    (r"not assigned: proves nothing", "niet toegewezen: bewijst niets"), (r"assigned to group", "toegewezen aan groep"),
    (r"assigned to ", "toegewezen aan "),
    (r"^created by app: ", "gemaakt door app: "), (r" - blueprint: ", " - blauwdruk: "),
    (r" - created: ", " - gemaakt: "),
    (r" reviewers: ", " beoordelaars: "),
    # Intune assignment scopes
    (r"no assignment that counts", "geen toewijzing die meetelt"), (r": proves nothing", ": bewijst niets"),
    (r"; not counted: ", "; telt niet mee: "), (r"\bexcludes group ", "sluit uit: groep "),
    (r" with assignment filter \(", " met toewijzingsfilter ("),
    (r": an assignment target this check does not know", ": een toewijzingsdoel dat deze controle niet kent"),
    (r"\bgroup (?=[0-9a-f]{8}-)", "groep "),
    # policy pack v2 routes
    (r" - created by app: ", " - gemaakt door app: "), (r" - owner tenant: ", " - tenant van de eigenaar: "),
    (r"^parent agent identity: ", "bovenliggende agentidentiteit: "), (r" - licences: ", " - licenties: "),
    (r"^held by 1 user$", "in handen van 1 gebruiker"), (r"^held by (\d+) users$", r"in handen van \1 gebruikers"),
    (r": review whether it is an agent or reaches data$",
     ": beoordeel of het een agent is of bij gegevens kan"),
    (r"^classified low on (\S+): users may consent to it themselves$",
     r"geclassificeerd als laag risico op \1: gebruikers mogen hier zelf toestemming voor geven"),
    (r"^application role (\S+) on $", r"applicatierol \1 op "),  # the API's name follows, quoted
    (r"^delegated (.*) on $", r"gedelegeerd \1 op "), (r"^, for user ", ", voor gebruiker "),
    (r"^, for all users$", ", voor alle gebruikers"),
    (r"; AI app: ", "; AI-app: "),
    (r"; reaches transcripts, messages or files; app not approved$",
     "; kan bij transcripties, berichten of bestanden; app niet goedgekeurd"),
    (r"^(\S+) consumed in the window$", r"\1 verbruikt in de meetperiode"),
    (r"^last sign-in ", "laatste aanmelding "),
    # words last: the phrases above already hold them
    (r"\ball devices\b", "alle apparaten"), (r"\ball users\b", "alle gebruikers"),
)]
"""The English phrases checks write into object details, in Dutch; the values and names in them stay as they are."""
_QUOTED = re.compile(r"('[^']*')")


def detail_in_lang(detail: str | None, lang: str) -> str:
    """An object's detail for a report in ``lang``: our phrases in Dutch; quoted tenant names untouched."""
    if lang != "nl" or not detail:
        return detail or ""
    parts = _QUOTED.split(detail)
    for i in range(0, len(parts), 2):  # the even parts are outside quotes
        for pattern, nl in DETAIL_NL:
            parts[i] = pattern.sub(nl, parts[i])
    return "".join(parts)


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
