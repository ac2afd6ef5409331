"""nids-incidents: alerts grouped into incidents per key while they keep coming, suppressible by operators."""
