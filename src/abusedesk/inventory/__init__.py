"""The inventory: customers → projects → services → IP allocations, its import, and the attribution index.

``InventoryService`` (service.py) is the entry point; ``AttributionIndex`` (index.py) answers "whose was this
address at that time" for one address or a columnar batch; ``importer.py`` reads the CSV / JSON format of
docs/reference/inventory-format.md.
"""
