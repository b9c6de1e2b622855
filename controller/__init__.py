"""abduce.controller: the campaign (pure ask/tell), its collaborators, the CLI.

Import what you need from the submodules; this package init stays light so
that ``abduce.controller.errors`` can be imported without torch.
"""
