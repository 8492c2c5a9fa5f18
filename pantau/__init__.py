"""Pantau: public-health and mobility analytics from city CCTV cameras."""
