"""Talk to Microsoft Graph: the msgraph-sdk client, sign-in, replay of recorded exchanges, throttling, JSON."""
